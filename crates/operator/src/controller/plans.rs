//! Plan controller: validation status and run history limits.
//!
//! Every plan is validated with the engine (templates, field paths, `.Values` use before
//! definition, durations, known clusters…); the result goes to `status.validation`,
//! `status.problems`, `status.stepCount`, `status.observedGeneration` and a `Valid`
//! condition. The alert controller re-validates at match time; the status is for humans.
//!
//! History limits: finished runs of the plan beyond `successfulRunsHistoryLimit` /
//! `failedRunsHistoryLimit` (default 10 each) are deleted, oldest first.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use lifeboat_api::conditions::{
    self, Condition, REASON_INVALID, REASON_VALID, STATUS_FALSE, STATUS_TRUE, TYPE_VALID,
};
use lifeboat_api::{RecoveryPlan, RecoveryRun, RunPhase};
use serde_json::json;

use crate::api_errors::{self, with_api_retries};
use crate::context::Context;
use crate::controller::validation;
use crate::index::RunFacts;

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "plans";
/// Default number of finished runs of each outcome kept per plan.
pub const DEFAULT_HISTORY_LIMIT: u32 = 10;
/// How often every plan is re-validated and its history limits enforced without a change
/// (one timer for all plans, in `run.rs`; changes of the registered clusters trigger it
/// at once).
pub const REVALIDATE_EVERY: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("API error: {0}")]
    Api(#[from] kube::Error),
    #[error("the plan has no name or namespace")]
    MissingMetadata,
}

impl PlanError {
    pub fn category(&self) -> &'static str {
        match self {
            PlanError::Api(_) => "Api",
            PlanError::MissingMetadata => "MissingMetadata",
        }
    }
}

/// Reconciles one plan: validation status, then history limits.
pub async fn reconcile(plan: Arc<RecoveryPlan>, ctx: Arc<Context>) -> Result<Action, PlanError> {
    let (Some(name), Some(namespace)) = (plan.metadata.name.clone(), plan.namespace()) else {
        return Err(PlanError::MissingMetadata);
    };
    // Validation needs the registered clusters; wait (bounded) for their first listing.
    let _ = ctx.clusters.wait_ready().await;
    let clusters = ctx.clusters.cluster_names();
    let problems = validation::validate_plan(&plan.spec, &clusters)
        .err()
        .unwrap_or_default();
    let valid = problems.is_empty();
    let current = plan.status.clone().unwrap_or_default();
    let step_count = u32::try_from(plan.spec.steps.len()).unwrap_or(u32::MAX);
    let validation_word = if valid { REASON_VALID } else { REASON_INVALID };
    let up_to_date = current.observed_generation == plan.metadata.generation
        && current.validation.as_deref() == Some(validation_word)
        && current.problems == problems
        && current.step_count == Some(step_count)
        && conditions::find_condition(&current.conditions, TYPE_VALID).is_some();
    if !up_to_date {
        let message = if valid {
            format!("the plan is valid ({step_count} step(s))")
        } else {
            format!("the plan is invalid: {}", problems.join("; "))
        };
        let mut conds = current.conditions.clone();
        conditions::set_condition(
            &mut conds,
            Condition::new(
                TYPE_VALID,
                if valid { STATUS_TRUE } else { STATUS_FALSE },
                validation_word,
                message.clone(),
                ctx.now(),
            ),
        );
        let patch = Patch::Merge(json!({"status": {
            "observedGeneration": plan.metadata.generation,
            "validation": validation_word,
            "problems": problems,
            "stepCount": step_count,
            "conditions": conds,
        }}));
        let api: Api<RecoveryPlan> = Api::namespaced(ctx.client.clone(), &namespace);
        let pp = PatchParams::default();
        match with_api_retries(|| api.patch_status(&name, &pp, &patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Action::await_change()),
            Err(e) => {
                ctx.metrics.api_error(api_errors::category(&e));
                return Err(e.into());
            }
        }
        if !valid {
            ctx.events.publish(
                kube::Resource::object_ref(plan.as_ref(), &()),
                EventType::Warning,
                "PlanInvalid",
                "ValidatePlan",
                message,
            );
        }
    }
    enforce_history(&ctx, &plan).await?;
    Ok(Action::await_change())
}

/// Which of `plan`'s runs to delete under its history limits: the oldest finished ones beyond
/// the limit of each outcome (pure).
pub fn runs_beyond_history(plan: &RecoveryPlan, runs: &[(String, RunFacts)]) -> Vec<String> {
    let mut completed = Vec::new();
    let mut failed = Vec::new();
    for (name, facts) in runs {
        let finished = facts.finished_at.clone().or_else(|| facts.created.clone());
        match facts.phase {
            Some(RunPhase::Completed) => completed.push((finished, name.clone())),
            Some(RunPhase::Failed | RunPhase::Aborted) => failed.push((finished, name.clone())),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (mut list, limit) in [
        (
            completed,
            plan.spec
                .successful_runs_history_limit
                .unwrap_or(DEFAULT_HISTORY_LIMIT),
        ),
        (
            failed,
            plan.spec
                .failed_runs_history_limit
                .unwrap_or(DEFAULT_HISTORY_LIMIT),
        ),
    ] {
        // Newest first; everything past `limit` goes.
        list.sort_by(|a, b| b.cmp(a));
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        out.extend(list.into_iter().skip(limit).map(|(_, n)| n));
    }
    out.sort();
    out
}

/// Deletes the runs of `plan` beyond its history limits (its runs found through the
/// by-plan index, not a pass over every cached run).
pub async fn enforce_history(ctx: &Context, plan: &RecoveryPlan) -> Result<(), PlanError> {
    let namespace = plan.namespace().unwrap_or_default();
    let plan_name = plan.name_any();
    let runs = ctx
        .indexes
        .runs
        .read(|idx| idx.runs_of(&namespace, &plan_name));
    let doomed = runs_beyond_history(plan, &runs);
    if doomed.is_empty() {
        return Ok(());
    }
    let api: Api<RecoveryRun> = Api::namespaced(ctx.client.clone(), &namespace);
    let dp = DeleteParams::default();
    for name in doomed {
        match with_api_retries(|| api.delete(&name, &dp)).await {
            Ok(_) => tracing::info!(run = %name, "deleted run beyond the plan's history limit"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What to do after a failed reconcile.
pub fn error_policy(_plan: Arc<RecoveryPlan>, err: &PlanError, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(CONTROLLER, err.category());
    tracing::warn!(error = %err, "plan reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;
    use lifeboat_api::{AlertSpec, RecoveryPlanSpec, RecoveryRunSpec, RecoveryRunStatus};

    fn plan(limit_ok: Option<u32>, limit_failed: Option<u32>) -> RecoveryPlan {
        let mut p = RecoveryPlan::new(
            "p",
            RecoveryPlanSpec {
                alert_labels: [("a".to_string(), "b".to_string())].into(),
                steps: vec![],
                finally: vec![],
                notifications: vec![],
                suspend: None,
                concurrency_policy: None,
                cooldown: None,
                successful_runs_history_limit: limit_ok,
                failed_runs_history_limit: limit_failed,
                service_account_name: None,
            },
        );
        p.metadata.namespace = Some("ns".into());
        p
    }

    fn run(name: &str, plan: &str, phase: RunPhase, finished_second: i64) -> (String, RunFacts) {
        let run = RecoveryRun {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: RecoveryRunSpec {
                alert_spec: AlertSpec::default(),
                steps: vec![],
                plan_name: Some(plan.into()),
                dry_run: None,
                service_account_name: None,
                cancel: None,
                finally: Vec::new(),
                notifications: Vec::new(),
                attempt: None,
            },
            status: Some(RecoveryRunStatus {
                phase,
                finished_at: Some(Time(
                    jiff::Timestamp::from_second(1_700_000_000 + finished_second).unwrap(),
                )),
                ..Default::default()
            }),
        };
        (name.to_string(), RunFacts::of(&run))
    }

    #[test]
    fn oldest_finished_runs_beyond_each_limit_are_deleted() {
        let runs = vec![
            run("ok1", "p", RunPhase::Completed, 1),
            run("ok2", "p", RunPhase::Completed, 2),
            run("ok3", "p", RunPhase::Completed, 3),
            run("bad1", "p", RunPhase::Failed, 1),
            run("bad2", "p", RunPhase::Failed, 2),
            run("active", "p", RunPhase::Running, 0),
        ];
        assert_eq!(
            runs_beyond_history(&plan(Some(2), Some(1)), &runs),
            vec!["bad1", "ok1"]
        );
        assert!(runs_beyond_history(&plan(None, None), &runs).is_empty());
        assert_eq!(
            runs_beyond_history(&plan(Some(0), Some(5)), &runs),
            vec!["ok1", "ok2", "ok3"]
        );
    }
}
