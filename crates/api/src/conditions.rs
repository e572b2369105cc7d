//! Conditions, shaped as in the seed's RecoveryRun example
//! (`type`, `status`, `lastProbeTime`, `lastTransitionTime`, `reason`, `message`),
//! and the condition types and reasons lifeboat uses, as constants.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One condition of a lifeboat resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Success` or `Valid`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: String,
    /// When the condition was last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub last_probe_time: Option<Time>,
    /// When `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::optional_timestamp")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable CamelCase reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub const STATUS_TRUE: &str = "True";
pub const STATUS_FALSE: &str = "False";
pub const STATUS_UNKNOWN: &str = "Unknown";

/// RecoveryRun: whether the run succeeded (the seed's condition type).
pub const TYPE_SUCCESS: &str = "Success";
/// RecoveryPlan: whether the plan passed validation.
pub const TYPE_VALID: &str = "Valid";
/// ReceivedAlert: whether the alert has been matched against plans.
pub const TYPE_PROCESSED: &str = "Processed";

pub const REASON_COMPLETED: &str = "Completed";
pub const REASON_FAILED: &str = "Failed";
/// `Success` is False: a check step's assertion did not hold, nothing after it ran.
pub const REASON_ABORTED: &str = "Aborted";
pub const REASON_CANCELLED: &str = "Cancelled";
pub const REASON_RUNNING: &str = "Running";
pub const REASON_VALID: &str = "Valid";
pub const REASON_INVALID: &str = "Invalid";
pub const REASON_MATCHED: &str = "Matched";
pub const REASON_NO_MATCH: &str = "NoMatchingPlan";
pub const REASON_RESOLVED: &str = "Resolved";

/// The message of a successful run's `Success` condition (as in the seed).
pub const MESSAGE_COMPLETED: &str = "Recovery step completed successfully";

impl Condition {
    /// A condition with the given type, status, reason and message, stamped `now`.
    pub fn new(
        type_: &str,
        status: &str,
        reason: &str,
        message: impl Into<String>,
        now: Time,
    ) -> Self {
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            last_probe_time: Some(now.clone()),
            last_transition_time: Some(now),
            reason: Some(reason.to_string()),
            message: Some(message.into()),
        }
    }
}

/// Put `new` into `conditions`, replacing the condition of the same type. Keeps the old
/// `lastTransitionTime` when the status did not change, as Kubernetes conventions ask.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status == new.status {
                new.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = new;
        }
        None => conditions.push(new),
    }
}

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn transition_time_kept_when_status_unchanged() {
        let mut conds = vec![];
        set_condition(
            &mut conds,
            Condition::new(
                TYPE_SUCCESS,
                STATUS_UNKNOWN,
                REASON_RUNNING,
                "a",
                at("2024-01-01T00:00:00Z"),
            ),
        );
        set_condition(
            &mut conds,
            Condition::new(
                TYPE_SUCCESS,
                STATUS_UNKNOWN,
                REASON_RUNNING,
                "b",
                at("2024-01-02T00:00:00Z"),
            ),
        );
        assert_eq!(conds.len(), 1);
        assert_eq!(
            conds[0].last_transition_time,
            Some(at("2024-01-01T00:00:00Z"))
        );
        assert_eq!(conds[0].last_probe_time, Some(at("2024-01-02T00:00:00Z")));
        set_condition(
            &mut conds,
            Condition::new(
                TYPE_SUCCESS,
                STATUS_TRUE,
                REASON_COMPLETED,
                "c",
                at("2024-01-03T00:00:00Z"),
            ),
        );
        assert_eq!(
            conds[0].last_transition_time,
            Some(at("2024-01-03T00:00:00Z"))
        );
        assert_eq!(conds[0].message.as_deref(), Some("c"));
    }
}
