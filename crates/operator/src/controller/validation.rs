//! Plan and run validation as the controllers use it: `lifeboat_engine::validate`, with
//! problems rendered as messages (`spec.steps[1].patch.override.fieldPath: …`).

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_api::{Labels, RecoveryPlanSpec, RecoveryRun};
use lifeboat_engine::{Problem, ValidatedPlan, ValidatedRun, ValidationOptions};

/// Whether every pair of the plan's labels is present and equal in the alert's.
pub fn labels_match(plan: &Labels, alert: &BTreeMap<String, String>) -> bool {
    lifeboat_engine::labels_match(plan, alert)
}

/// The validated plan, or its problems, each naming its field; `clusters` are the
/// registered clusters.
pub fn validate_plan(
    spec: &RecoveryPlanSpec,
    clusters: &BTreeSet<String>,
) -> Result<ValidatedPlan, Vec<String>> {
    let opts = ValidationOptions {
        known_clusters: Some(clusters),
    };
    lifeboat_engine::validate_plan(spec, &opts).map_err(|p| messages(&p))
}

/// A run's validated steps (hand-written runs too), or their problems. Clusters are checked
/// when a step executes, so a cluster registered after the run was created is fine.
pub fn validate_run(run: &RecoveryRun) -> Result<ValidatedRun, Vec<String>> {
    lifeboat_engine::validate_run(&run.spec, &ValidationOptions::default())
        .map_err(|p| messages(&p))
}

fn messages(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}
