//! `RecoveryPlan`: which alerts trigger which steps.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::labels::Labels;
use crate::step::Step;

/// A recovery plan: the alert labels it answers and the ordered steps it runs.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "recovery.elotl.co",
    version = "v1alpha1",
    kind = "RecoveryPlan",
    namespaced,
    status = "RecoveryPlanStatus",
    shortname = "rp",
    category = "recovery",
    doc = "A recovery plan: alert labels to match and the ordered steps to run.",
    printcolumn = r#"{"name":"Valid", "type":"string", "jsonPath":".status.validation"}"#,
    printcolumn = r#"{"name":"Steps", "type":"integer", "jsonPath":".status.stepCount"}"#,
    printcolumn = r#"{"name":"Suspended", "type":"boolean", "jsonPath":".spec.suspend"}"#,
    printcolumn = r#"{"name":"Last Run", "type":"string", "jsonPath":".status.lastRun"}"#,
    printcolumn = r#"{"name":"Last Outcome", "type":"string", "jsonPath":".status.lastRunPhase"}"#,
    printcolumn = r#"{"name":"Age", "type":"date", "jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPlanSpec {
    /// Labels an alert must carry (every pair present and equal) to trigger this plan.
    #[x_kube(validation = Rule::new("size(self) > 0").message("alertLabels must name at least one label: a plan without any would match every alert"))]
    pub alert_labels: Labels,
    /// The steps, run in order.
    #[x_kube(validation = Rule::new("size(self) > 0").message("a plan needs at least one step"))]
    #[schemars(length(max = 64))]
    pub steps: Vec<Step>,
    /// Steps that always run once the steps above have ended — completed, failed, aborted or
    /// cancelled — e.g. to notify or clean up; `.Run.Phase` tells them the outcome. Each
    /// runs even if an earlier one failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub finally: Vec<Step>,
    /// When true, matching alerts start nothing (recorded as skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// What to do when an alert matches while a run of this plan is still active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<ConcurrencyPolicy>,
    /// Minimum time between the start of two runs of this plan (`10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^(0|(([0-9]+(\\\\.[0-9]*)?|\\\\.[0-9]+)(ns|us|µs|ms|s|m|h))+)$')").message("must be a duration such as 500ms, 30s, 5m or 1h30m"))]
    #[schemars(length(max = 32))]
    pub cooldown: Option<String>,
    /// How many Completed runs of this plan to keep (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_runs_history_limit: Option<u32>,
    /// How many Failed runs of this plan to keep (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_runs_history_limit: Option<u32>,
    /// ServiceAccount (in the plan's namespace) that every API call of the steps impersonates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')").message("must be a ServiceAccount name (lower case letters, digits, - and .)"))]
    #[schemars(length(max = 253))]
    pub service_account_name: Option<String>,
    /// Webhook notifications on run events (started, waiting for approval, completed,
    /// failed, aborted, cancelled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub notifications: Vec<crate::PlanNotification>,
}

impl RecoveryPlanSpec {
    /// Whether the plan is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspend.unwrap_or(false)
    }
    /// The effective concurrency policy (Forbid by default).
    pub fn effective_concurrency_policy(&self) -> ConcurrencyPolicy {
        self.concurrency_policy.unwrap_or(ConcurrencyPolicy::Forbid)
    }
}

/// Whether a second run of a plan may start while one is active.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConcurrencyPolicy {
    /// Skip the new alert while a run is active (default).
    Forbid,
    /// Start runs concurrently.
    Allow,
}

/// Validation result and last run of a plan.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPlanStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Valid` or `Invalid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    /// Every problem found by validation, each naming its step and field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Number of steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_count: Option<u32>,
    /// Name of the most recent run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// Phase of the most recent run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_phase: Option<String>,
    /// When the most recent run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub last_run_time: Option<Time>,
    /// Conditions (`Valid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
