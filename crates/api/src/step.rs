//! The step model shared by plans and runs.
//!
//! A step is written as in the seeds: a `type` discriminator plus one body key named after
//! it (`readField`, `patch`, `job`, `wait`), and optional common fields (`title`,
//! `cluster`, `timeout`, `retries`). The `type` key may come before or after the body.
//! Adding a step type means adding its body struct here, a field on [`Step`], a variant of
//! [`StepType`], and one executor module in the operator.

use std::collections::BTreeMap;

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind of a step. The body of the step lives under the key of the same name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StepType {
    /// Read one field of an object into `.Values.<outputKey>`.
    ReadField,
    /// Patch one field of an object.
    Patch,
    /// Run a Kubernetes Job and wait for it to finish.
    Job,
    /// Wait until a field of an object satisfies a condition.
    Wait,
    /// Check assertions (a guard): the run stops `Aborted`, changing nothing, unless all hold.
    Check,
    /// Pause until people approve (or reject) the run.
    Approval,
    /// Send a notification (an HTTP webhook with a templated JSON body).
    Notify,
}

impl StepType {
    /// The name as written in manifests (`readField`, `patch`, `job`, `wait`).
    pub fn as_str(&self) -> &'static str {
        match self {
            StepType::ReadField => "readField",
            StepType::Patch => "patch",
            StepType::Job => "job",
            StepType::Wait => "wait",
            StepType::Check => "check",
            StepType::Approval => "approval",
            StepType::Notify => "notify",
        }
    }
}

impl std::fmt::Display for StepType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a plan (or of a run's snapshot of it).
// The bodies are boxed: a step has one, and the seven inline would make every step of every
// cached plan a kilobyte.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("(self.type == 'readField') == has(self.readField)").message("a step of type readField needs a readField body, and only a readField step may have one"))]
#[x_kube(validation = Rule::new("(self.type == 'patch') == has(self.patch)").message("a step of type patch needs a patch body, and only a patch step may have one"))]
#[x_kube(validation = Rule::new("(self.type == 'job') == has(self.job)").message("a step of type job needs a job body, and only a job step may have one"))]
#[x_kube(validation = Rule::new("(self.type == 'wait') == has(self.wait)").message("a step of type wait needs a wait body, and only a wait step may have one"))]
#[x_kube(validation = Rule::new("(self.type == 'check') == has(self.check)").message("a step of type check needs a check body, and only a check step may have one"))]
#[x_kube(validation = Rule::new("(self.type == 'approval') == has(self.approval)").message("a step of type approval needs a approval body, and only a approval step may have one"))]
#[x_kube(validation = Rule::new("(self.type == 'notify') == has(self.notify)").message("a step of type notify needs a notify body, and only a notify step may have one"))]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Which kind of step this is; its body is under the key of the same name.
    #[serde(rename = "type")]
    pub type_: StepType,
    /// Human-readable title shown in status and in the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Name of a registered cluster to act on; absent means the cluster lifeboat runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// How long the step may take, as a duration (`30s`, `5m`, `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^(0|(([0-9]+(\\\\.[0-9]*)?|\\\\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$')").message("must be a duration such as 500ms, 30s, 5m or 1h30m"))]
    #[schemars(length(max = 32))]
    pub timeout: Option<String>,
    /// How often a failed attempt is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryPolicy>,
    /// Body of a `readField` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_field: Option<Box<ReadFieldStep>>,
    /// Body of a `patch` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Box<PatchStep>>,
    /// Body of a `job` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Box<JobStep>>,
    /// Body of a `wait` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Box<WaitStep>>,
    /// Body of a `check` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Box<CheckStep>>,
    /// Body of an `approval` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Box<ApprovalStep>>,
    /// Body of a `notify` step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Box<NotifyStep>>,
}

impl Step {
    /// The title if set, else a description derived from the body.
    pub fn display_name(&self) -> String {
        if let Some(t) = &self.title {
            return t.clone();
        }
        let target = match (&self.read_field, &self.patch, &self.wait) {
            (Some(r), _, _) if self.type_ == StepType::ReadField => Some(&r.target),
            (_, Some(p), _) if self.type_ == StepType::Patch => Some(&p.target),
            (_, _, Some(w)) if self.type_ == StepType::Wait => Some(&w.target),
            _ => None,
        };
        match (target, &self.check) {
            (Some(t), _) => format!("{} {}/{}", self.type_, t.resource, t.name),
            (None, Some(c)) if self.type_ == StepType::Check => {
                format!("check {} assertion(s)", c.assertions.len())
            }
            _ => self.type_.to_string(),
        }
    }
}

/// Retry policy of a step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// How many times a failed attempt is retried (0 = run once).
    #[x_kube(validation = Rule::new("self <= 10").message("must be at most 10"))]
    pub limit: u32,
    /// Delay before the first retry (`1s`, `500ms`); doubles each retry. Default `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^(0|(([0-9]+(\\\\.[0-9]*)?|\\\\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$')").message("must be a duration such as 500ms, 30s, 5m or 1h30m"))]
    #[schemars(length(max = 32))]
    pub backoff: Option<String>,
}

/// The object a step reads, patches or waits on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepTarget {
    /// API version of the object (`v1`, `apps/v1`, `pgv2.percona.com/v2`).
    #[x_kube(validation = Rule::new("self.matches('^([a-z0-9.-]+/)?v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$')").message("must be an API version such as v1, apps/v1 or pgv2.percona.com/v2"))]
    #[schemars(length(max = 128))]
    pub api_version: String,
    /// Plural resource name (`pods`, `configmaps`, `perconapgclusters`).
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("must be a plural resource name in lower case, such as pods or deployments"))]
    #[schemars(length(max = 63))]
    pub resource: String,
    /// Namespace of the object; absent for cluster-scoped objects. May be a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the object. May be a template.
    #[x_kube(validation = Rule::new("size(self) > 0").message("must name the object"))]
    pub name: String,
}

/// Body of a `readField` step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReadFieldStep {
    /// The object to read.
    #[serde(flatten)]
    pub target: StepTarget,
    /// Path of the field to read (`spec.containers[0].image`).
    #[x_kube(validation = Rule::new("size(self) > 0").message("must name the field to read"))]
    pub field_path: String,
    /// Key under which the value is stored in `.Values`.
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z_][A-Za-z0-9_]*$')").message("must be a name usable as .Values.<outputKey>: letters, digits and _, not starting with a digit"))]
    #[schemars(length(max = 63))]
    pub output_key: String,
}

/// How a patch is sent.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PatchType {
    /// RFC 6902 JSON Patch (`replace` at the field path).
    #[serde(rename = "application/json-patch+json")]
    JsonPatch,
    /// RFC 7386 JSON merge patch.
    #[serde(rename = "application/merge-patch+json")]
    MergePatch,
    /// Kubernetes strategic merge patch (built-in kinds only).
    #[serde(rename = "application/strategic-merge-patch+json")]
    StrategicMergePatch,
}

impl PatchType {
    /// The media type sent as `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self {
            PatchType::JsonPatch => "application/json-patch+json",
            PatchType::MergePatch => "application/merge-patch+json",
            PatchType::StrategicMergePatch => "application/strategic-merge-patch+json",
        }
    }
}

/// Body of a `patch` step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchStep {
    /// The object to patch.
    #[serde(flatten)]
    pub target: StepTarget,
    /// Which field to set, and to what.
    #[serde(rename = "override")]
    pub override_: PatchOverride,
    /// How the patch is sent. Default: JSON Patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<PatchType>,
}

impl PatchStep {
    /// The effective patch type (JSON Patch when unset, as in the seeds).
    pub fn effective_patch_type(&self) -> PatchType {
        self.patch_type.unwrap_or(PatchType::JsonPatch)
    }
}

/// The field a patch sets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchOverride {
    /// Path of the field to set (`spec.containers[1].image`).
    pub field_path: String,
    /// The value to set.
    pub value: PatchValue,
}

/// The value a patch sets: any JSON. Templates are rendered in its string leaves only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct PatchValue {
    /// Any JSON value: a string, a boolean, a number, a list or an object.
    #[schemars(schema_with = "crate::schema::any_json")]
    pub raw: serde_json::Value,
}

/// Body of a `job` step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStep {
    /// A PodTemplateSpec; templates are rendered in its string leaves.
    #[schemars(schema_with = "crate::schema::free_object")]
    pub template: serde_json::Value,
    /// Namespace of the Job; defaults to the run's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Job `backoffLimit` (pod retries). Default 0: a failure fails the step at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("must not be negative"))]
    pub backoff_limit: Option<i32>,
    /// Extra labels on the Job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// What a `wait` step waits for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WaitCondition {
    /// The field exists (and is not null).
    Exists,
    /// The field equals `value`.
    Equals,
    /// The field exists and differs from `value`.
    NotEquals,
}

/// Body of a `wait` step.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitStep {
    /// The object to watch.
    #[serde(flatten)]
    pub target: StepTarget,
    /// Path of the field to test.
    pub field_path: String,
    /// The condition to wait for.
    pub condition: WaitCondition,
    /// Value compared against for `Equals` / `NotEquals` (string leaves are templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_json")]
    pub value: Option<serde_json::Value>,
}

/// Body of a `check` step: assertions evaluated before anything is changed, each recorded
/// in the step's status with the value observed. If one does not hold, the run stops in
/// phase `Aborted` and no later step runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckStep {
    /// Every assertion must hold.
    #[x_kube(validation = Rule::new("size(self) > 0").message("a check needs at least one assertion"))]
    #[schemars(length(max = 16))]
    pub assertions: Vec<Assertion>,
    /// When set, the assertions are evaluated again at this interval (`5s`) until they all
    /// hold or the step's timeout passes; when unset, they are evaluated once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^(0|(([0-9]+(\\\\.[0-9]*)?|\\\\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$')").message("must be a duration such as 500ms, 30s, 5m or 1h30m"))]
    #[schemars(length(max = 32))]
    pub poll_interval: Option<String>,
}

/// One assertion of a check: one probe (`field`, `cluster` or `alertFiring`), or a
/// `quorum` of probes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("(has(self.field) ? 1 : 0) + (has(self.cluster) ? 1 : 0) + (has(self.alertFiring) ? 1 : 0) + (has(self.quorum) ? 1 : 0) == 1").message("an assertion has exactly one of field, cluster, alertFiring and quorum"))]
#[serde(rename_all = "camelCase")]
pub struct Assertion {
    #[serde(flatten)]
    pub probe: Probe,
    /// At least `required` of the probes in `of` hold (e.g. "the primary is down" seen
    /// from several vantage points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<Quorum>,
}

/// One observation: exactly one of `field`, `cluster` and `alertFiring`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// A name for the status and messages (default: a description of the probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A field of an object, in any registered cluster, compared with a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<FieldProbe>,
    /// Whether a cluster's API server answers its readiness check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterProbe>,
    /// `true`: the run's alert is still firing (not resolved); `false`: it has resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_firing: Option<bool>,
}

/// `required` of the probes in `of` must hold.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("self.required >= 1 && self.required <= size(self.of)").message("required must be between 1 and the number of probes in of"))]
#[x_kube(validation = Rule::new("self.of.all(p, (has(p.field) ? 1 : 0) + (has(p.cluster) ? 1 : 0) + (has(p.alertFiring) ? 1 : 0) == 1)").message("each probe in of has exactly one of field, cluster and alertFiring"))]
#[serde(rename_all = "camelCase")]
pub struct Quorum {
    pub required: u32,
    #[schemars(length(max = 8))]
    pub of: Vec<Probe>,
}

/// How a field is compared.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Operator {
    Exists,
    NotExists,
    Equals,
    NotEquals,
    GreaterThan,
    GreaterOrEqual,
    LessThan,
    LessOrEqual,
}

impl Operator {
    /// Whether the operator orders values (and so needs `compareAs`).
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            Operator::GreaterThan
                | Operator::GreaterOrEqual
                | Operator::LessThan
                | Operator::LessOrEqual
        )
    }
}

/// What the values of an ordering comparison are: the same text means different things
/// (`1m` is a minute as a duration, a thousandth as a quantity), so it is never guessed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CompareAs {
    /// Decimal numbers (`3`, `0.5`).
    Number,
    /// Go durations (`30s`, `1m30s`).
    Duration,
    /// Kubernetes quantities (`500m`, `2Gi`, `1e3`).
    Quantity,
}

/// A field of an object compared with a value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("!(self.operator in ['GreaterThan', 'GreaterOrEqual', 'LessThan', 'LessOrEqual']) || has(self.compareAs)").message("an ordering operator needs compareAs (Number, Duration or Quantity)"))]
#[serde(rename_all = "camelCase")]
pub struct FieldProbe {
    /// The object to read.
    #[serde(flatten)]
    pub target: StepTarget,
    /// The registered cluster it is in; absent means the step's cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Path of the field (`status.replicationLag`).
    pub field_path: String,
    pub operator: Operator,
    /// The value compared with (string leaves are templates); required unless the
    /// operator is `Exists` or `NotExists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_json")]
    pub value: Option<serde_json::Value>,
    /// Required for `GreaterThan`, `GreaterOrEqual`, `LessThan` and `LessOrEqual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_as: Option<CompareAs>,
}

/// The state a cluster must be in.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ClusterState {
    /// Its API server answers `/readyz` with 200.
    Reachable,
    /// Its API server cannot be reached, or does not answer ready.
    Unreachable,
}

/// Whether a cluster's API server is reachable, probed by lifeboat.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterProbe {
    /// A registered cluster; absent means the cluster lifeboat runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub state: ClusterState,
}

/// Body of an `approval` step: the run pauses in phase `WaitingForApproval` until
/// `requiredApprovals` distinct people approve it (`lifeboat approve RUN`), stops `Aborted`
/// when one rejects it, and applies `onTimeout` when the step's timeout (default 1h) passes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalStep {
    /// What the approvers are asked, shown in the Event and by `lifeboat runs show`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How many distinct people must approve. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("at least one approval"))]
    pub required_approvals: Option<u32>,
    /// The decision when nobody decided in time. Default `Reject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<crate::ApprovalDecision>,
}

/// Body of a `notify` step: POSTs `body` (templated JSON; a Slack incoming-webhook body works
/// as is) to the URL in a Secret, with an optional bearer token from a Secret. Transient
/// failures (connection errors, 429, 5xx) are retried with backoff. A notification that
/// cannot be delivered does not fail the run unless `required` is true.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifyStep {
    pub webhook: WebhookTarget,
    /// The JSON document sent; string leaves are templates.
    #[schemars(schema_with = "crate::schema::any_json")]
    pub body: serde_json::Value,
    /// Fail the step (and so the run) when the notification cannot be delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

/// Where a webhook notification goes: its URL (and token) are read from Secrets in the
/// run's namespace, so plans hold no credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTarget {
    /// The key of a Secret holding the URL (`https://hooks.slack.com/services/…`).
    pub url_from: SecretKeyRef,
    /// The key of a Secret holding a token, sent as `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_from: Option<SecretKeyRef>,
}

/// One key of a Secret in the run's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("must be a Secret name (lower case letters, digits, - and .)"))]
    #[schemars(length(max = 253))]
    pub name: String,
    #[x_kube(validation = Rule::new("self.matches('^[-._a-zA-Z0-9]+$')").message("must be a Secret key (letters, digits, -, _ and .)"))]
    #[schemars(length(max = 253))]
    pub key: String,
}

/// A notification a plan sends on run events (`spec.notifications`): the same webhook and
/// templated body as a `notify` step, sent in the background so it never delays or fails
/// the run. Each delivery is recorded in the run's `status.notifications`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanNotification {
    /// The run events that send it. (Not `on`: YAML 1.1 parsers, kubectl's among them, read
    /// that key as `true`.)
    #[x_kube(validation = Rule::new("size(self) > 0").message("name at least one run event"))]
    #[schemars(length(max = 6))]
    pub events: Vec<RunEvent>,
    pub webhook: WebhookTarget,
    /// The JSON document sent; string leaves are templates (`.Run.Phase` names the event's
    /// outcome).
    #[schemars(schema_with = "crate::schema::any_json")]
    pub body: serde_json::Value,
}

/// A moment in a run's life that can send a notification.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RunEvent {
    /// The first step started.
    Started,
    /// The run paused at an approval step.
    WaitingForApproval,
    Completed,
    Failed,
    Aborted,
    Cancelled,
}

impl RunEvent {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunEvent::Started => "Started",
            RunEvent::WaitingForApproval => "WaitingForApproval",
            RunEvent::Completed => "Completed",
            RunEvent::Failed => "Failed",
            RunEvent::Aborted => "Aborted",
            RunEvent::Cancelled => "Cancelled",
        }
    }
}
