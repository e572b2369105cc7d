//! Alert controller: an unprocessed ReceivedAlert becomes RecoveryRuns.
//!
//! The alert is matched against the plans of its own namespace (the tenancy boundary),
//! through the plan index (`controller/index.rs`), never a scan of every plan. For
//! every matching plan that is valid (re-validated here, never trusting a stale status), not
//! suspended, allowed by its concurrency policy and past its cooldown, a RecoveryRun named
//! `naming::run_name(plan, alert)` is created — so a retry or a restart finds the run it
//! created before instead of creating a second. Then the alert's status records what
//! happened.
//!
//! Ownership: runs carry **no** ownerReference. Deleting a plan must not kill a recovery in
//! flight, and deleting an alert (Alertmanager-driven cleanup, TTLs) must not erase the record
//! of what was done about it. Runs are cleaned up by the plan's history limits instead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use lifeboat_api::conditions::{
    self, Condition, REASON_MATCHED, REASON_NO_MATCH, REASON_RESOLVED, STATUS_TRUE, TYPE_PROCESSED,
};
use lifeboat_api::{
    ANNOTATION_RECEIVED_AT, AlertSpec, ConcurrencyPolicy, GoDuration, LABEL_ALERT, LABEL_PLAN,
    ReceivedAlert, ReceivedAlertStatus, RecoveryPlan, RecoveryRun, RecoveryRunSpec, SkippedPlan,
};
use lifeboat_engine::ValidatedPlan;
use serde_json::json;

use crate::api_errors::{self, with_api_retries};
use crate::context::Context;
use crate::controller::validation;
use crate::naming;
use crate::writes::{self, Part};

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "alerts";

pub const SKIP_SUSPENDED: &str = "Suspended";
pub const SKIP_CONCURRENCY: &str = "ConcurrencyForbid";
pub const SKIP_COOLDOWN: &str = "Cooldown";
pub const SKIP_INVALID: &str = "Invalid";
/// Reason of an alert whose matching plans all skipped.
pub const REASON_SKIPPED: &str = "Skipped";

/// How long a run created by this process counts as active while the cache has not seen it.
const RECENT_RUN_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("API error: {0}")]
    Api(#[from] kube::Error),
    #[error("the alert has no name or namespace")]
    MissingMetadata,
}

impl AlertError {
    pub fn category(&self) -> &'static str {
        match self {
            AlertError::Api(_) => "Api",
            AlertError::MissingMetadata => "MissingMetadata",
        }
    }
}

/// What to do about one matching plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Create (or find) the run.
    Run,
    Skip {
        reason: &'static str,
        message: String,
    },
}

/// The decision for a matching plan, given the state of its runs (pure).
///
/// `own_run_exists`: the run for this (alert, plan) already exists (created before a
/// crash or a retry) — it is found, never blocked by itself. `active`: other runs of the plan
/// that are Pending or Running. `last_start`: when the latest run of the plan was created.
pub fn decide(
    plan: &RecoveryPlan,
    validation: &Result<ValidatedPlan, Vec<String>>,
    own_run_exists: bool,
    active: &[String],
    last_start: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Decision {
    if own_run_exists {
        return Decision::Run;
    }
    let validated = match validation {
        Ok(v) => v,
        Err(problems) => {
            return Decision::Skip {
                reason: SKIP_INVALID,
                message: format!("the plan is invalid: {}", problems.join("; ")),
            };
        }
    };
    if plan.spec.is_suspended() {
        return Decision::Skip {
            reason: SKIP_SUSPENDED,
            message: "the plan is suspended".to_string(),
        };
    }
    if plan.spec.effective_concurrency_policy() == ConcurrencyPolicy::Forbid && !active.is_empty() {
        return Decision::Skip {
            reason: SKIP_CONCURRENCY,
            message: format!(
                "run {} of this plan is still active (concurrencyPolicy: Forbid)",
                active.join(", ")
            ),
        };
    }
    if let (Some(cooldown), Some(last)) = (validated.cooldown, last_start) {
        let elapsed = now.duration_since(last);
        let elapsed = Duration::try_from(elapsed).unwrap_or_default();
        if elapsed < cooldown {
            return Decision::Skip {
                reason: SKIP_COOLDOWN,
                message: format!(
                    "the last run started {}s ago, within the cooldown of {}",
                    elapsed.as_secs(),
                    GoDuration(cooldown)
                ),
            };
        }
    }
    Decision::Run
}

/// The RecoveryRun for (alert, plan).
pub fn build_run(alert: &ReceivedAlert, plan: &RecoveryPlan, name: &str) -> RecoveryRun {
    let alert_name = alert.name_any();
    let plan_name = plan.name_any();
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_PLAN.to_string(), naming::sanitize(&plan_name, 63));
    labels.insert(LABEL_ALERT.to_string(), naming::sanitize(&alert_name, 63));
    // When the alert arrived: the webhook's sub-second stamp, else the alert's creation.
    let received_at = alert
        .annotations()
        .get(ANNOTATION_RECEIVED_AT)
        .cloned()
        .or_else(|| {
            alert
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        });
    let annotations =
        received_at.map(|t| BTreeMap::from([(ANNOTATION_RECEIVED_AT.to_string(), t)]));
    RecoveryRun {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: alert.namespace(),
            labels: Some(labels),
            annotations,
            ..Default::default()
        },
        spec: RecoveryRunSpec {
            alert_spec: AlertSpec {
                name: alert_name,
                labels: alert.spec.labels.clone(),
                annotations: alert.spec.annotations.clone(),
            },
            steps: plan.spec.steps.clone(),
            finally: plan.spec.finally.clone(),
            notifications: plan.spec.notifications.clone(),
            plan_name: Some(plan_name),
            dry_run: None,
            service_account_name: plan.spec.service_account_name.clone(),
            cancel: None,
            attempt: None,
        },
        status: None,
    }
}

fn run_is_active(run: &RecoveryRun) -> bool {
    !run.status.as_ref().is_some_and(|s| s.phase.is_finished())
}

/// The runs among `names` that the API server, read through `fetch`, still has active: a
/// run it no longer has, or has finished, is dropped. An error reading one is returned
/// rather than guessed at, so the alert is retried instead of skipped on a stale view.
async fn still_active<F, Fut>(names: Vec<String>, fetch: F) -> Result<Vec<String>, kube::Error>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Option<RecoveryRun>, kube::Error>>,
{
    let mut active = Vec::with_capacity(names.len());
    for name in names {
        if fetch(name.clone())
            .await?
            .is_some_and(|r| run_is_active(&r))
        {
            active.push(name);
        }
    }
    Ok(active)
}

/// Deletes the processed alerts whose `alert_retention` has passed, looking at the cache
/// every `retention / 10` (between 1 s and 1 min) until `work` is cancelled. One sweep
/// instead of a timer per alert: ten thousand processed alerts cost no scheduler entries.
pub async fn expire_processed(ctx: Arc<Context>, work: tokio_util::sync::CancellationToken) {
    let Some(retention) = ctx.alert_retention else {
        return;
    };
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = work.cancelled() => return,
        }
        let now = ctx.clock.now();
        let expired = ctx
            .indexes
            .processed_alerts
            .read(|idx| idx.expired(now, retention));
        for (namespace, name) in expired {
            if work.is_cancelled() {
                return;
            }
            let api: Api<ReceivedAlert> = Api::namespaced(ctx.client.clone(), &namespace);
            let dp = kube::api::DeleteParams::default();
            match with_api_retries(|| api.delete(&name, &dp)).await {
                Ok(_) => {
                    tracing::debug!(alert = %name, %namespace, "deleted a processed alert past its retention")
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    ctx.metrics.api_error(api_errors::category(&e));
                    tracing::warn!(alert = %name, %namespace, error = %e, "cannot delete a processed alert past its retention");
                }
            }
        }
    }
}

/// Reconciles one alert.
pub async fn reconcile(alert: Arc<ReceivedAlert>, ctx: Arc<Context>) -> Result<Action, AlertError> {
    if alert.status.as_ref().is_some_and(|s| s.processed) {
        // Only deleted once its retention has passed ([`expire_processed`]).
        return Ok(Action::await_change());
    }
    let (Some(alert_name), Some(namespace)) = (alert.metadata.name.clone(), alert.namespace())
    else {
        return Err(AlertError::MissingMetadata);
    };
    // The plans' last runs wait until no alert is in hand (`last_run`).
    let _in_hand = ctx.last_runs.processing_alert();
    let now = ctx.clock.now();
    let mut status = alert.status.clone().unwrap_or_default();
    status.processed = true;
    status.processed_at = Some(ctx.now());
    status.matched_plans.clear();
    status.runs.clear();
    status.skipped.clear();

    let outcome;
    if alert.is_resolved(&Time(now)) {
        status.resolved = true;
        if status.resolved_at.is_none() {
            status.resolved_at = Some(ctx.now());
        }
        status.reason = Some(REASON_RESOLVED.to_string());
        status.message = Some("the alert has resolved; no recovery was started".to_string());
        outcome = REASON_RESOLVED;
    } else {
        // The index narrows the plans down to the matching ones; the cache has the objects
        // (a plan the cache no longer has was deleted a moment ago and is left out).
        let names = ctx
            .indexes
            .plans
            .read(|idx| idx.matching(&namespace, &alert.spec.labels));
        let plans: Vec<Arc<RecoveryPlan>> = names
            .iter()
            .filter_map(|name| ctx.plans.get(&ObjectRef::new(name).within(&namespace)))
            .filter(|p| validation::labels_match(&p.spec.alert_labels, &alert.spec.labels))
            .collect();
        let clusters = ctx.clusters.cluster_names();
        for plan in &plans {
            let plan_name = plan.name_any();
            status.matched_plans.push(plan_name.clone());
            let key = (namespace.clone(), plan_name.clone());
            let _section = ctx.recent_runs.section(&key).await;
            let run_name = naming::run_name(&plan_name, &alert_name);
            let plan_runs = ctx
                .indexes
                .runs
                .read(|idx| idx.runs_of(&namespace, &plan_name));
            // Forget runs the cache now knows about as finished, and stale ones.
            ctx.recent_runs.prune(&key, |recent| {
                let cached = plan_runs.iter().find(|(name, _)| *name == recent.name);
                match cached {
                    Some((_, facts)) => facts.is_active(),
                    None => {
                        Duration::try_from(now.duration_since(recent.created)).unwrap_or_default()
                            < RECENT_RUN_TTL
                    }
                }
            });
            let recent = ctx.recent_runs.get(&key);
            let own_run_exists = plan_runs.iter().any(|(name, _)| *name == run_name)
                || recent.iter().any(|r| r.name == run_name);
            let mut active: Vec<String> = plan_runs
                .iter()
                .filter(|(_, facts)| facts.is_active())
                .map(|(name, _)| name.clone())
                .collect();
            for r in &recent {
                if !active.contains(&r.name) {
                    active.push(r.name.clone());
                }
            }
            active.retain(|n| *n != run_name);
            active.sort();
            let last_start = plan_runs
                .iter()
                .filter_map(|(_, facts)| facts.created.as_ref().map(|t| t.0))
                .chain(recent.iter().map(|r| r.created))
                .max();
            let validated = validation::validate_plan(&plan.spec, &clusters);
            let mut decision = decide(plan, &validated, own_run_exists, &active, last_start, now);
            if matches!(decision, Decision::Skip { reason, .. } if reason == SKIP_CONCURRENCY) {
                // The cache may not have seen those runs finish yet: an alert skipped for
                // a run that has in fact ended would be a recovery silently not started.
                // The API server has the last word before skipping.
                let api: Api<RecoveryRun> = Api::namespaced(ctx.client.clone(), &namespace);
                active = still_active(active, |name| {
                    let api = api.clone();
                    async move { with_api_retries(|| api.get_opt(&name)).await }
                })
                .await
                .inspect_err(|e| ctx.metrics.api_error(api_errors::category(e)))?;
                decision = decide(plan, &validated, own_run_exists, &active, last_start, now);
            }
            match decision {
                Decision::Run => {
                    let run = build_run(&alert, plan, &run_name);
                    let url = RecoveryRun::url_path(&(), Some(&namespace));
                    let pp = PostParams::default();
                    match with_api_retries(|| writes::create(&ctx.client, &url, &pp, &run)).await {
                        Ok(created) => {
                            ctx.recent_runs.record(key.clone(), run_name.clone(), now);
                            let mut run_ref = run.object_ref(&());
                            run_ref.uid = created.uid;
                            run_ref.resource_version = created.resource_version;
                            ctx.events.run_created(&namespace, &run_name);
                            ctx.events.publish_related(
                                alert.object_ref(&()),
                                Some(run_ref),
                                EventType::Normal,
                                "RunCreated",
                                "CreateRun",
                                format!("plan {plan_name} matched; created RecoveryRun {run_name}"),
                            );
                        }
                        Err(kube::Error::Api(s)) if s.is_already_exists() => {}
                        Err(e) => {
                            ctx.metrics.api_error(api_errors::category(&e));
                            return Err(e.into());
                        }
                    }
                    status.runs.push(run_name);
                }
                Decision::Skip { reason, message } => {
                    ctx.events.publish_related(
                        alert.object_ref(&()),
                        Some(plan.object_ref(&())),
                        EventType::Normal,
                        "PlanSkipped",
                        "MatchPlan",
                        format!("plan {plan_name} skipped ({reason}): {message}"),
                    );
                    status.skipped.push(SkippedPlan {
                        plan: plan_name,
                        reason: reason.to_string(),
                        message: Some(message),
                    });
                }
            }
        }
        if plans.is_empty() {
            status.reason = Some(REASON_NO_MATCH.to_string());
            status.message = Some(format!(
                "no RecoveryPlan in namespace {namespace} matches the alert's labels"
            ));
            outcome = REASON_NO_MATCH;
        } else if status.runs.is_empty() {
            status.reason = Some(REASON_SKIPPED.to_string());
            status.message = Some(format!(
                "{} plan(s) matched; none started a run: {}",
                plans.len(),
                status
                    .skipped
                    .iter()
                    .map(|s| format!("{} ({})", s.plan, s.reason))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            outcome = REASON_SKIPPED;
        } else {
            status.reason = Some(REASON_MATCHED.to_string());
            status.message = Some(format!(
                "{} plan(s) matched; started {}",
                plans.len(),
                status.runs.join(", ")
            ));
            outcome = REASON_MATCHED;
        }
    }
    let message = status.message.clone().unwrap_or_default();
    conditions::set_condition(
        &mut status.conditions,
        Condition::new(
            TYPE_PROCESSED,
            STATUS_TRUE,
            outcome,
            message.clone(),
            ctx.now(),
        ),
    );
    write_status(&ctx, &namespace, &alert_name, &status).await?;
    ctx.metrics.alert_processed(outcome);
    if outcome == REASON_NO_MATCH {
        ctx.events.publish(
            alert.object_ref(&()),
            EventType::Normal,
            "NoMatchingPlan",
            "MatchPlan",
            message,
        );
    }
    Ok(Action::await_change())
}

async fn write_status(
    ctx: &Context,
    namespace: &str,
    name: &str,
    status: &ReceivedAlertStatus,
) -> Result<(), AlertError> {
    let url = ReceivedAlert::url_path(&(), Some(namespace));
    let patch = Patch::Merge(json!({ "status": status }));
    let pp = PatchParams::default();
    match with_api_retries(|| writes::patch(&ctx.client, &url, name, Part::Status, &pp, &patch))
        .await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile: nothing left to record on.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => {
            ctx.metrics.api_error(api_errors::category(&e));
            Err(e.into())
        }
    }
}

/// What to do after a failed reconcile.
pub fn error_policy(_alert: Arc<ReceivedAlert>, err: &AlertError, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(CONTROLLER, err.category());
    tracing::warn!(error = %err, "alert reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_api::RecoveryPlanSpec;

    fn plan() -> RecoveryPlan {
        let mut p = RecoveryPlan::new(
            "failover",
            RecoveryPlanSpec {
                alert_labels: [("app".to_string(), "db".to_string())].into(),
                steps: vec![],
                finally: vec![],
                notifications: vec![],
                suspend: None,
                concurrency_policy: None,
                cooldown: None,
                successful_runs_history_limit: None,
                failed_runs_history_limit: None,
                service_account_name: Some("recovery".into()),
            },
        );
        p.metadata.namespace = Some("team".into());
        p
    }

    fn valid(cooldown: Option<Duration>) -> Result<ValidatedPlan, Vec<String>> {
        Ok(ValidatedPlan {
            steps: vec![],
            finally: vec![],
            notifications: vec![],
            cooldown,
        })
    }

    fn ts(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn forbid_blocks_a_second_active_run_but_not_the_alerts_own() {
        let p = plan();
        let active = vec!["failover-abc".to_string()];
        match decide(&p, &valid(None), false, &active, None, ts(0)) {
            Decision::Skip { reason, message } => {
                assert_eq!(reason, SKIP_CONCURRENCY);
                assert!(message.contains("failover-abc"), "{message}");
            }
            d => panic!("expected a skip, got {d:?}"),
        }
        assert_eq!(
            decide(&p, &valid(None), true, &active, None, ts(0)),
            Decision::Run
        );
        let mut allow = plan();
        allow.spec.concurrency_policy = Some(ConcurrencyPolicy::Allow);
        assert_eq!(
            decide(&allow, &valid(None), false, &active, None, ts(0)),
            Decision::Run
        );
    }

    #[tokio::test]
    async fn forbid_asks_the_api_server_before_counting_a_run_as_active() {
        let alert = ReceivedAlert::new(
            "db-down",
            lifeboat_api::ReceivedAlertSpec {
                labels: [("app".to_string(), "db".to_string())].into(),
                annotations: Default::default(),
                starts_at: None,
                ends_at: None,
                fingerprint: None,
                generator_url: None,
                source: None,
            },
        );
        let run = |phase: Option<lifeboat_api::RunPhase>| {
            let mut r = build_run(&alert, &plan(), "r");
            r.status = phase.map(|phase| lifeboat_api::RecoveryRunStatus {
                phase,
                ..Default::default()
            });
            r
        };
        let server: BTreeMap<&str, RecoveryRun> = [
            ("running", run(Some(lifeboat_api::RunPhase::Running))),
            ("pending", run(None)),
            ("finished", run(Some(lifeboat_api::RunPhase::Completed))),
            ("failed", run(Some(lifeboat_api::RunPhase::Failed))),
        ]
        .into();
        let names = ["running", "pending", "finished", "failed", "deleted"].map(String::from);
        let active = still_active(names.to_vec(), |name| {
            let found = server.get(name.as_str()).cloned();
            async move { Ok(found) }
        })
        .await
        .unwrap();
        assert_eq!(
            active,
            ["running", "pending"],
            "finished and deleted runs do not block"
        );

        let unreachable = still_active(names.to_vec(), |_| async {
            Err(kube::Error::Api(
                kube::core::Status::failure("etcdserver: request timed out", "Timeout")
                    .with_code(504)
                    .boxed(),
            ))
        })
        .await;
        assert!(unreachable.is_err(), "no skip decided on an unread run");
    }

    #[test]
    fn suspended_invalid_and_cooldown_skip() {
        let mut p = plan();
        p.spec.suspend = Some(true);
        assert!(matches!(
            decide(&p, &valid(None), false, &[], None, ts(0)),
            Decision::Skip {
                reason: SKIP_SUSPENDED,
                ..
            }
        ));
        let p = plan();
        match decide(
            &p,
            &Err(vec!["spec.steps[0]: bad".into()]),
            false,
            &[],
            None,
            ts(0),
        ) {
            Decision::Skip { reason, message } => {
                assert_eq!(reason, SKIP_INVALID);
                assert!(message.contains("spec.steps[0]: bad"), "{message}");
            }
            d => panic!("expected a skip, got {d:?}"),
        }
        let cooldown = valid(Some(Duration::from_secs(600)));
        assert!(matches!(
            decide(&p, &cooldown, false, &[], Some(ts(0)), ts(60)),
            Decision::Skip {
                reason: SKIP_COOLDOWN,
                ..
            }
        ));
        assert_eq!(
            decide(&p, &cooldown, false, &[], Some(ts(0)), ts(601)),
            Decision::Run
        );
    }

    #[test]
    fn run_snapshot_of_the_plan() {
        let p = plan();
        let mut alert = ReceivedAlert::new(
            "db-down",
            lifeboat_api::ReceivedAlertSpec {
                labels: [("app".to_string(), "db".to_string())].into(),
                annotations: [("summary".to_string(), "down".to_string())].into(),
                starts_at: None,
                ends_at: None,
                fingerprint: None,
                generator_url: None,
                source: None,
            },
        );
        alert.metadata.namespace = Some("team".into());
        alert.metadata.annotations = Some(
            [(
                ANNOTATION_RECEIVED_AT.to_string(),
                "2026-11-22T10:00:00.123456Z".to_string(),
            )]
            .into(),
        );
        let name = naming::run_name("failover", "db-down");
        let run = build_run(&alert, &p, &name);
        assert_eq!(
            run.annotations()
                .get(ANNOTATION_RECEIVED_AT)
                .map(String::as_str),
            Some("2026-11-22T10:00:00.123456Z"),
            "the run carries the sub-second time its alert was received"
        );
        assert_eq!(run.metadata.namespace.as_deref(), Some("team"));
        assert!(run.metadata.owner_references.is_none());
        let labels = run.metadata.labels.unwrap();
        assert_eq!(labels[LABEL_PLAN], "failover");
        assert_eq!(labels[LABEL_ALERT], "db-down");
        assert_eq!(run.spec.alert_spec.name, "db-down");
        assert_eq!(run.spec.alert_spec.annotations["summary"], "down");
        assert_eq!(run.spec.plan_name.as_deref(), Some("failover"));
        assert_eq!(run.spec.service_account_name.as_deref(), Some("recovery"));
    }

    #[test]
    fn resolved_alerts() {
        let mut alert = ReceivedAlert::new(
            "a",
            lifeboat_api::ReceivedAlertSpec {
                labels: Default::default(),
                annotations: Default::default(),
                starts_at: None,
                ends_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts(10))),
                fingerprint: None,
                generator_url: None,
                source: None,
            },
        );
        assert!(!alert.is_resolved(&Time(ts(5))));
        assert!(alert.is_resolved(&Time(ts(10))));
        alert.spec.ends_at = None;
        alert.status = Some(ReceivedAlertStatus {
            resolved: true,
            ..Default::default()
        });
        assert!(alert.is_resolved(&Time(ts(0))));
    }
}
