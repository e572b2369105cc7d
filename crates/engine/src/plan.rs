//! Plans and runs after validation: the typed values the controllers, the executor,
//! `lifeboat validate` and `lifeboat drill` consume.
//!
//! [`crate::validate`] is the only way to build them, so holding a [`ValidatedStep`] means
//! its body matches its type, its field paths parsed, its templates compiled and its
//! durations are durations: nothing downstream parses again, and nothing invalid silently
//! becomes a default. The wire format (`lifeboat_api::Step`) is unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat_api::{
    ApprovalDecision, ClusterState, CompareAs, Operator, PatchType, StepType, WaitCondition,
};

use crate::fieldpath::FieldPath;
use crate::template::{JsonTemplate, Template};

/// Default timeout of a `readField` or `patch` step.
pub const DEFAULT_API_STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default timeout of a `job` step.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(600);
/// Default timeout of a `wait` step.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default timeout of an `approval` step.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(3600);
/// Delay before the first retry of a failed attempt when the step sets none.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// A plan that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedPlan {
    pub steps: Vec<ValidatedStep>,
    /// The steps that always run at the end.
    pub finally: Vec<ValidatedStep>,
    /// Notifications on run events.
    pub notifications: Vec<ValidatedNotification>,
    /// Minimum time between two runs of the plan.
    pub cooldown: Option<Duration>,
}

/// A run's steps and `finally` steps after validation.
#[derive(Debug, Clone)]
pub struct ValidatedRun {
    pub steps: Vec<ValidatedStep>,
    pub finally: Vec<ValidatedStep>,
    pub notifications: Vec<ValidatedNotification>,
}

/// A plan notification after validation: the events that send it, and what is sent where.
#[derive(Debug, Clone)]
pub struct ValidatedNotification {
    pub events: Vec<lifeboat_api::RunEvent>,
    pub send: NotifyAction,
}

/// One step that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedStep {
    /// The step's title, or a description derived from its body.
    pub title: String,
    /// The registered cluster it acts on; `None` for the cluster lifeboat runs in.
    pub cluster: Option<String>,
    /// How long one attempt may take (the step's `timeout`, or its type's default).
    pub timeout: Duration,
    /// How failed attempts are retried.
    pub retries: Retries,
    /// What the step does.
    pub action: StepAction,
}

impl ValidatedStep {
    pub fn step_type(&self) -> StepType {
        match self.action {
            StepAction::ReadField(_) => StepType::ReadField,
            StepAction::Patch(_) => StepType::Patch,
            StepAction::Job(_) => StepType::Job,
            StepAction::Wait(_) => StepType::Wait,
            StepAction::Check(_) => StepType::Check,
            StepAction::Approval(_) => StepType::Approval,
            StepAction::Notify(_) => StepType::Notify,
        }
    }
}

/// How a step's failed attempts are retried: `limit` more attempts, the first after
/// `backoff`, each later one after twice the previous delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    pub limit: u32,
    pub backoff: Duration,
}

/// What a step does, with its body parsed.
#[derive(Debug, Clone)]
pub enum StepAction {
    ReadField(ReadFieldAction),
    Patch(PatchAction),
    Job(JobAction),
    Wait(WaitAction),
    Check(CheckAction),
    Approval(ApprovalAction),
    Notify(NotifyAction),
}

/// Sends `body` to the webhook whose URL (and token) are in Secrets.
#[derive(Debug, Clone)]
pub struct NotifyAction {
    pub url_from: lifeboat_api::SecretKeyRef,
    pub token_from: Option<lifeboat_api::SecretKeyRef>,
    pub body: JsonTemplate,
    /// Whether a notification that cannot be delivered fails the step.
    pub required: bool,
}

/// Pauses the run until `required` distinct people approve it.
#[derive(Debug, Clone)]
pub struct ApprovalAction {
    /// What the approvers are asked.
    pub message: Option<String>,
    pub required: u32,
    /// The decision when the step's timeout passes.
    pub on_timeout: ApprovalDecision,
}

/// The object a step reads, patches or waits on.
#[derive(Debug, Clone)]
pub struct Target {
    /// `v1`, `apps/v1`, `pgv2.percona.com/v2`.
    pub api_version: String,
    /// Plural resource name (`pods`).
    pub resource: String,
    /// Namespace; `None` means the run's namespace (ignored for cluster-scoped objects).
    pub namespace: Option<Template>,
    pub name: Template,
}

/// Reads `field_path` of `target` into `.Values.<output_key>`.
#[derive(Debug, Clone)]
pub struct ReadFieldAction {
    pub target: Target,
    pub field_path: FieldPath,
    pub output_key: String,
}

/// Sets `field_path` of `target` to the rendered `value`.
#[derive(Debug, Clone)]
pub struct PatchAction {
    pub target: Target,
    pub field_path: FieldPath,
    pub value: JsonTemplate,
    pub patch_type: PatchType,
}

/// Runs a Job from a pod template.
#[derive(Debug, Clone)]
pub struct JobAction {
    /// The PodTemplateSpec (it has at least one container with a name and an image).
    pub template: JsonTemplate,
    /// The Job's namespace; `None` means the run's.
    pub namespace: Option<Template>,
    /// Pod retries of the Job (default 0: a failure fails the step at once).
    pub backoff_limit: i32,
    /// Extra labels on the Job.
    pub labels: BTreeMap<String, String>,
}

/// Waits until `field_path` of `target` satisfies `condition`.
#[derive(Debug, Clone)]
pub struct WaitAction {
    pub target: Target,
    pub field_path: FieldPath,
    pub condition: WaitCondition,
    /// The value compared with (present for `Equals` and `NotEquals`).
    pub expected: Option<JsonTemplate>,
}

/// Evaluates assertions before anything is changed.
#[derive(Debug, Clone)]
pub struct CheckAction {
    pub assertions: Vec<CheckAssertion>,
    /// Re-evaluate at this interval until all hold (within the step's timeout); `None`:
    /// evaluate once.
    pub poll_interval: Option<Duration>,
}

/// One assertion of a check step.
#[derive(Debug, Clone)]
pub enum CheckAssertion {
    Probe(ProbeCheck),
    /// At least `required` of `of` hold.
    Quorum {
        name: String,
        required: u32,
        of: Vec<ProbeCheck>,
    },
}

impl CheckAssertion {
    /// Its name, or a description of it.
    pub fn name(&self) -> &str {
        match self {
            CheckAssertion::Probe(p) => &p.name,
            CheckAssertion::Quorum { name, .. } => name,
        }
    }
}

/// One observation of a check, with its name (given, or derived from it).
#[derive(Debug, Clone)]
pub struct ProbeCheck {
    pub name: String,
    pub kind: ProbeKind,
}

/// What a probe observes.
#[derive(Debug, Clone)]
pub enum ProbeKind {
    Field(Box<FieldCheck>),
    /// A cluster (`None`: the local one) is reachable or not.
    Cluster {
        cluster: Option<String>,
        state: ClusterState,
    },
    /// The run's alert is still firing (`true`) or has resolved (`false`).
    AlertFiring(bool),
}

/// A field of an object compared with a value.
#[derive(Debug, Clone)]
pub struct FieldCheck {
    pub target: Target,
    /// The registered cluster of the object; `None`: the step's cluster.
    pub cluster: Option<String>,
    pub field_path: FieldPath,
    pub operator: Operator,
    pub expected: Option<JsonTemplate>,
    /// Set exactly when `operator` orders values.
    pub compare_as: Option<CompareAs>,
}

/// The default timeout of a step of type `t`.
pub fn default_timeout(t: StepType) -> Duration {
    match t {
        StepType::ReadField | StepType::Patch | StepType::Check => DEFAULT_API_STEP_TIMEOUT,
        StepType::Job => DEFAULT_JOB_TIMEOUT,
        StepType::Wait => DEFAULT_WAIT_TIMEOUT,
        StepType::Approval => DEFAULT_APPROVAL_TIMEOUT,
        StepType::Notify => DEFAULT_API_STEP_TIMEOUT,
    }
}
