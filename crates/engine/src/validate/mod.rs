//! Validation of plans and runs: either the typed values of [`crate::plan`], or every
//! problem, each with its location (`spec.steps[1].patch.override.fieldPath`), so an
//! `Invalid` plan says exactly what to fix.
//!
//! `steps` builds the typed steps; `documents` checks YAML files offline.
//!
//! Rules:
//! - `spec.alertLabels` must not be empty (an empty label set would match nothing), and a
//!   plan needs at least one step;
//! - each step carries the body named by its `type` and no other body;
//! - required strings are non-empty: `apiVersion`, `resource`, `name`, `fieldPath`,
//!   `outputKey`; every `fieldPath` parses;
//! - every string that may hold a template parses (`name`, `namespace`, string leaves of
//!   `value.raw`, of a job `template`, of a wait `value`), and uses `.Values.x` only after
//!   an earlier `readField` step has `outputKey: x` (a value only given to `default` may be
//!   absent);
//! - strategic merge patch only on built-in kinds; merge patches cannot carry `null`;
//! - durations (`timeout`, `retries.backoff`, `cooldown`) parse; a timeout is positive;
//! - `retries.limit` is at most [`MAX_RETRIES`]: a larger number is rejected, because
//!   retrying a failing recovery step for many minutes during an outage hides the failure
//!   instead of reporting it;
//! - a step's `cluster` is a registered cluster (when the caller knows the clusters);
//! - a job template has a non-empty `spec.containers` list, each with a `name` and `image`;
//! - a wait step with `Equals` / `NotEquals` has a `value`;
//! - `serviceAccountName`, when given, is not empty.
//!
//! Two `readField` steps may write the same `outputKey`: the later value wins, which is how
//! a plan re-reads a field after a change.

mod documents;
mod steps;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use lifeboat_api::{GoDuration, PlanNotification, RecoveryPlanSpec, RecoveryRunSpec, Step};

use crate::plan::{ValidatedPlan, ValidatedRun};

pub use documents::{DocumentReport, check_documents, check_documents_with};

/// Largest accepted `retries.limit`.
pub const MAX_RETRIES: u32 = 10;

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a field path in the document (`spec.steps[1].patch.override.fieldPath`).
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn new(location: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// What the validator knows about the environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationOptions<'a> {
    /// Registered cluster names; `None` skips the cluster check (e.g. offline validation).
    pub known_clusters: Option<&'a BTreeSet<String>>,
}

/// A plan's typed value, or every problem it has.
pub fn validate_plan(
    spec: &RecoveryPlanSpec,
    opts: &ValidationOptions,
) -> Result<ValidatedPlan, Vec<Problem>> {
    let mut out = Vec::new();
    if spec.alert_labels.is_empty() {
        out.push(Problem::new(
            "spec.alertLabels",
            "must not be empty: an empty label set matches no alert",
        ));
    }
    for (k, _) in spec.alert_labels.iter().filter(|(k, _)| k.is_empty()) {
        out.push(Problem::new(
            format!("spec.alertLabels[{k:?}]"),
            "empty label name",
        ));
    }
    let cooldown = spec
        .cooldown
        .as_deref()
        .and_then(|c| check_duration(&mut out, "spec.cooldown", c, false));
    if spec
        .service_account_name
        .as_ref()
        .is_some_and(|s| s.trim().is_empty())
    {
        out.push(Problem::new(
            "spec.serviceAccountName",
            "empty (omit it to run with lifeboat's own account)",
        ));
    }
    if spec.steps.is_empty() {
        out.push(Problem::new("spec.steps", "a plan needs at least one step"));
    }
    let run = validate_parts(
        &mut out,
        &spec.steps,
        &spec.finally,
        &spec.notifications,
        opts,
    );
    if out.is_empty() {
        Ok(ValidatedPlan {
            steps: run.steps,
            finally: run.finally,
            notifications: run.notifications,
            cooldown,
        })
    } else {
        Err(out)
    }
}

/// A run's typed steps (hand-written runs too), or every problem they have.
pub fn validate_run(
    spec: &RecoveryRunSpec,
    opts: &ValidationOptions,
) -> Result<ValidatedRun, Vec<Problem>> {
    let mut out = Vec::new();
    if spec.steps.is_empty() {
        out.push(Problem::new("spec.steps", "a run needs at least one step"));
    }
    let run = validate_parts(
        &mut out,
        &spec.steps,
        &spec.finally,
        &spec.notifications,
        opts,
    );
    if out.is_empty() { Ok(run) } else { Err(out) }
}

/// The steps, finally steps and notifications a plan and a run have in common.
fn validate_parts(
    out: &mut Vec<Problem>,
    steps: &[Step],
    finally: &[Step],
    notifications: &[PlanNotification],
    opts: &ValidationOptions,
) -> ValidatedRun {
    ValidatedRun {
        steps: steps::validate_steps(out, "spec.steps", steps, opts),
        finally: steps::validate_finally_steps(out, "spec.finally", finally, steps, opts),
        notifications: steps::validate_notifications(
            out,
            "spec.notifications",
            notifications,
            steps,
            opts,
        ),
    }
}

/// The duration `s` at `loc`, or a problem (also when zero but required `positive`).
fn check_duration(out: &mut Vec<Problem>, loc: &str, s: &str, positive: bool) -> Option<Duration> {
    match s.parse::<GoDuration>().map(Duration::from) {
        Ok(d) if positive && d.is_zero() => {
            out.push(Problem::new(loc, "must be greater than zero"));
            None
        }
        Ok(d) => Some(d),
        Err(e) => {
            out.push(Problem::new(loc, e));
            None
        }
    }
}

fn known_list(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none yet".to_string()
    } else {
        set.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_display() {
        assert_eq!(
            Problem::new("spec.steps[1].patch.override.fieldPath", "bad").to_string(),
            "spec.steps[1].patch.override.fieldPath: bad"
        );
    }
}
