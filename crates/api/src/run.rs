//! `RecoveryRun`: one execution of a plan's steps.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::step::{Step, StepType};

/// One execution of recovery steps, created for a matching alert (or by hand).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "recovery.elotl.co",
    version = "v1alpha1",
    kind = "RecoveryRun",
    namespaced,
    status = "RecoveryRunStatus",
    shortname = "rr",
    category = "recovery",
    doc = "One execution of recovery steps, with each step's progress and result.",
    printcolumn = r#"{"name":"Phase", "type":"string", "jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Step", "type":"string", "jsonPath":".status.progress"}"#,
    printcolumn = r#"{"name":"Attempt", "type":"integer", "jsonPath":".status.attempt", "priority":1}"#,
    printcolumn = r#"{"name":"Plan", "type":"string", "jsonPath":".spec.planName"}"#,
    printcolumn = r#"{"name":"Alert", "type":"string", "jsonPath":".spec.alertSpec.name"}"#,
    printcolumn = r#"{"name":"Dry Run", "type":"boolean", "jsonPath":".spec.dryRun", "priority":1}"#,
    printcolumn = r#"{"name":"Message", "type":"string", "jsonPath":".status.message", "priority":1}"#,
    printcolumn = r#"{"name":"Age", "type":"date", "jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryRunSpec {
    /// The alert that triggered the run.
    pub alert_spec: AlertSpec,
    /// The steps, copied from the plan when the run was created.
    #[schemars(length(max = 64))]
    pub steps: Vec<Step>,
    /// Steps that always run at the end, whatever the outcome (copied from the plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub finally: Vec<Step>,
    /// Notifications on run events (copied from the plan).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub notifications: Vec<crate::PlanNotification>,
    /// The plan this run was created from (absent for hand-written runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_name: Option<String>,
    /// Reads are real; writes are sent with `dryRun=All` and recorded, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// ServiceAccount every API call of the steps impersonates (copied from the plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Stop the run after the step in flight (a step that only waits — approval, wait,
    /// check — stops at once); the run ends `Cancelled`. `lifeboat runs cancel` sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<bool>,
    /// The attempt the run should be at (1 when absent). Raising it on a Failed or Aborted
    /// run resumes it from the step that failed, with the values it had; `lifeboat runs
    /// retry` does so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub attempt: Option<u32>,
}

impl RecoveryRunSpec {
    /// Whether this is a dry run.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }

    /// Whether someone asked the run to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.unwrap_or(false)
    }

    /// The attempt asked for (1 unless retried).
    pub fn attempt(&self) -> u32 {
        self.attempt.unwrap_or(1)
    }
}

/// The alert as seen by a run (available to templates as `.Alert`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// Name of the ReceivedAlert.
    pub name: String,
    /// The alert's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The alert's annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Lifecycle phase of a run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RunPhase {
    /// Created, not started.
    #[default]
    Pending,
    /// Steps executing.
    Running,
    /// Paused at an approval step until people approve or reject it.
    WaitingForApproval,
    /// Every step succeeded.
    Completed,
    /// A step failed (or the run was invalid); later steps did not run.
    Failed,
    /// A check step's assertion did not hold, or an approval was refused: nothing after it
    /// ran.
    Aborted,
    /// Stopped on request (`spec.cancel`): nothing after the step in flight ran.
    Cancelled,
    /// The steps have ended (`status.outcome` says how); the `finally` steps are running.
    Finalizing,
}

impl RunPhase {
    /// Whether the run has finished (Completed, Failed, Aborted or Cancelled).
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            RunPhase::Completed | RunPhase::Failed | RunPhase::Aborted | RunPhase::Cancelled
        )
    }

    /// Whether `lifeboat runs retry` may resume the run (Failed or Aborted).
    pub fn is_retryable(&self) -> bool {
        matches!(self, RunPhase::Failed | RunPhase::Aborted)
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            RunPhase::Pending => "Pending",
            RunPhase::Running => "Running",
            RunPhase::WaitingForApproval => "WaitingForApproval",
            RunPhase::Completed => "Completed",
            RunPhase::Failed => "Failed",
            RunPhase::Aborted => "Aborted",
            RunPhase::Cancelled => "Cancelled",
            RunPhase::Finalizing => "Finalizing",
        }
    }
}

/// Lifecycle phase of one step.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum StepPhase {
    /// Not started.
    #[default]
    Pending,
    /// Started; its effect may or may not have happened yet.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Not executed because an earlier step failed.
    Skipped,
    /// Stopped while waiting because the run was cancelled.
    Cancelled,
}

/// Observed state of a run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryRunStatus {
    /// Pending, Running, WaitingForApproval, Finalizing, Completed, Failed, Aborted or
    /// Cancelled.
    #[serde(default)]
    pub phase: RunPhase,
    /// Outputs of the steps so far (`.Values` in templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::schema::any_json_map")]
    pub values: BTreeMap<String, serde_json::Value>,
    /// Conditions, shaped as in the seed (`Success`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Per-step progress, one entry per step in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    /// `k/n`: steps finished out of the total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Index of the step executing (or that failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step: Option<u32>,
    /// When the first step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub started_at: Option<Time>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub finished_at: Option<Time>,
    /// Summary of the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The attempt under way or last made (1 when absent; see `spec.attempt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// How the earlier attempts ended, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_attempts: Vec<AttemptRecord>,
    /// How the steps ended, while the `finally` steps run (the phase once they are done,
    /// unless a finally step fails a Completed run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunPhase>,
    /// Progress of the `finally` steps, one entry per step in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finally: Vec<StepStatus>,
    /// The deliveries of the plan's notifications, recorded when the run finishes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationRecord>,
}

/// One delivery of a plan notification.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    pub event: crate::RunEvent,
    /// Index of the notification in `spec.notifications`.
    pub index: u32,
    pub delivered: bool,
    pub attempts: u32,
    /// What happened (the host, never the URL).
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub time: Option<Time>,
}

impl RecoveryRunStatus {
    /// The attempt under way or last made (1 unless retried).
    pub fn attempt(&self) -> u32 {
        self.attempt.unwrap_or(1)
    }
}

/// How one earlier attempt of a run ended.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub attempt: u32,
    pub phase: RunPhase,
    /// The step it stopped at (0-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub finished_at: Option<Time>,
}

/// Progress of one step.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// Position of the step (0-based).
    pub index: u32,
    /// The step's title or a derived description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The step's type.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<StepType>,
    /// Pending, Running, Succeeded, Failed, Skipped or Cancelled.
    #[serde(default)]
    pub phase: StepPhase,
    /// The cluster the step acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// How many attempts have started.
    #[serde(default)]
    pub attempts: u32,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub started_at: Option<Time>,
    /// When the step finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub finished_at: Option<Time>,
    /// What happened (error message on failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The rendered patch (patch steps) or Job name (job steps), for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::any_json")]
    pub rendered: Option<serde_json::Value>,
    /// Name of the Job a job step created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The decisions an approval step counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,
    /// What a check step observed: one entry per assertion, as last evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// One assertion of a check step as evaluated: the record of why the run went on or
/// stopped.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// The assertion's name or description (`field status.lag of configmaps db/standby
    /// LessOrEqual "30s"`).
    pub assertion: String,
    /// Whether it held.
    pub passed: bool,
    /// What was observed (`12s`, `absent`, `unreachable: connection refused`, `2 of 3`).
    pub observed: String,
}

/// One decision an approval step counted: who (as the API server authenticated them), what,
/// when and why.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    pub approver: String,
    pub decision: crate::ApprovalDecision,
    /// When the RecoveryApproval was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
