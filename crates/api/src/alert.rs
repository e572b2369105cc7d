//! `ReceivedAlert`: an alert as lifeboat received it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;

/// An alert received from an alerting system (e.g. Prometheus Alertmanager) or created by hand.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "recovery.elotl.co",
    version = "v1alpha1",
    kind = "ReceivedAlert",
    namespaced,
    status = "ReceivedAlertStatus",
    shortname = "ra",
    category = "recovery",
    doc = "An alert received by lifeboat; matched against the RecoveryPlans of its namespace.",
    printcolumn = r#"{"name":"Processed", "type":"boolean", "jsonPath":".status.processed"}"#,
    printcolumn = r#"{"name":"Resolved", "type":"boolean", "jsonPath":".status.resolved"}"#,
    printcolumn = r#"{"name":"Runs", "type":"string", "jsonPath":".status.runs"}"#,
    printcolumn = r#"{"name":"Reason", "type":"string", "jsonPath":".status.reason"}"#,
    printcolumn = r#"{"name":"Age", "type":"date", "jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedAlertSpec {
    /// The alert's labels; plans match on these.
    pub labels: BTreeMap<String, String>,
    /// The alert's annotations (summary, description…), available to templates.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub starts_at: Option<Time>,
    /// When the alert ended (set once resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub ends_at: Option<Time>,
    /// Alertmanager's fingerprint of the label set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Link back to the alert's source expression.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "generatorURL"
    )]
    pub generator_url: Option<String>,
    /// Who delivered the alert (`alertmanager/<receiver>`, `kubectl`, `lifeboat-cli`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// What lifeboat did with an alert.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedAlertStatus {
    /// Whether the alert has been matched against plans (as in the seeds).
    #[serde(default)]
    pub processed: bool,
    /// When it was processed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub processed_at: Option<Time>,
    /// Plans whose labels matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matched_plans: Vec<String>,
    /// RecoveryRuns created for this alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
    /// Matching plans that did not start a run, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedPlan>,
    /// Short reason for the outcome (`Matched`, `NoMatchingPlan`, `Resolved`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable outcome (e.g. why nothing matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether the alerting system reported the alert as resolved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolved: bool,
    /// When the resolution was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub resolved_at: Option<Time>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A plan that matched an alert but did not start a run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedPlan {
    /// The plan's name.
    pub plan: String,
    /// Why (`Suspended`, `ConcurrencyForbid`, `Cooldown`, `Invalid`).
    pub reason: String,
    /// Details, e.g. the active run that blocked a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ReceivedAlert {
    /// Whether the alert has resolved at `now`: recorded so, or its `endsAt` has passed.
    pub fn is_resolved(&self, now: &Time) -> bool {
        self.status.as_ref().is_some_and(|s| s.resolved)
            || self.spec.ends_at.as_ref().is_some_and(|t| t.0 <= now.0)
    }
}
