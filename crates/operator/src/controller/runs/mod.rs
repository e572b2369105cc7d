//! Run controller: drives a RecoveryRun's steps, crash-safe.
//!
//! Every transition is persisted through the status subresource with the run's
//! resourceVersion as precondition, so two executors can never both proceed from the same
//! state, and a stale view of the run fails its first write instead of acting:
//!
//! 1. before a step that acts or may wait (every type but `readField`): the step Running,
//!    attempts+1, startedAt, cluster; run Running, currentStep, progress; and the outcome of
//!    every earlier step not yet written (phase, finishedAt, message, outputs) — one write;
//!    only then is the step executed;
//! 2. after the last or a failed step: its outcome and the run's — one write.
//!
//! A `readField` changes nothing and answers within one request, so it executes without a
//! write of its own: its start and outcome go into the next write. A run of n steps of which
//! r are reads costs n − r + 1 status writes (a read-only run one), and the plan's `lastRun`
//! is patched once, with the run's outcome.
//!
//! A process killed anywhere resumes at the first step that has not Succeeded; a step found
//! Running is executed again (every step's effect is idempotent), never skipped; a read whose
//! outcome was not yet written is read again.
//!
//! Run control is in the spec, so it survives restarts and needs only RBAC on the run:
//! `spec.cancel` stops the run before its next step (a step that only waits stops at
//! once), and raising `spec.attempt` on a Failed or Aborted run resumes it from the step
//! that failed, keeping its values and recording the earlier attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use lifeboat_api::conditions::{
    self, Condition, MESSAGE_COMPLETED, REASON_ABORTED, REASON_COMPLETED, REASON_FAILED,
    REASON_INVALID, REASON_RUNNING, STATUS_FALSE, STATUS_TRUE, STATUS_UNKNOWN, TYPE_SUCCESS,
};
use lifeboat_api::{
    ApprovalDecision, GoDuration, RecoveryRun, RecoveryRunSpec, RecoveryRunStatus, RunEvent,
    RunPhase, StepPhase, StepStatus,
};
use lifeboat_engine::{StepAction, ValidatedStep};
use serde_json::json;

use crate::api_errors::{self, with_api_retries};

mod control;
mod finally;
mod notifications;

use crate::context::Context;
use crate::controller::validation;
use crate::executor::{self, StepFailure, StepInput, StepOutput};
use crate::writes;
pub use control::is_done;
use control::{cancellation, only_waits, retry_requested, start_needs_write};

/// Name of this controller in metrics and logs.
pub const CONTROLLER: &str = "runs";
/// How often a reconcile re-reads the run after a status-write conflict before giving up.
const MAX_CONFLICTS: u32 = 5;
/// How often a step that only waits looks for a cancellation in the local cache.
const CANCEL_POLL: Duration = Duration::from_millis(200);

/// Why a reconcile of a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the run was changed by someone else (resourceVersion conflict)")]
    Conflict,
    #[error("API error: {0}")]
    Api(#[from] kube::Error),
    #[error("cannot serialize the run: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("the run has no name or namespace")]
    MissingMetadata,
}

impl RunError {
    /// Low-cardinality category for metrics.
    pub fn category(&self) -> &'static str {
        match self {
            RunError::Conflict => "Conflict",
            RunError::Api(_) => "Api",
            RunError::Serialize(_) => "Serialize",
            RunError::MissingMetadata => "MissingMetadata",
        }
    }
}

/// Reconciles one run: executes its remaining steps, or does nothing if it has finished.
pub async fn reconcile(run: Arc<RecoveryRun>, ctx: Arc<Context>) -> Result<Action, RunError> {
    if is_done(&run) {
        return Ok(Action::await_change());
    }
    let (Some(name), Some(namespace)) = (run.metadata.name.clone(), run.namespace()) else {
        return Err(RunError::MissingMetadata);
    };
    let api: Api<RecoveryRun> = Api::namespaced(ctx.client.clone(), &namespace);
    // The cache keeps only a summary of a finished run: a retry reads the whole run.
    let run = if run.status.as_ref().is_some_and(|s| s.phase.is_finished()) {
        match with_api_retries(|| api.get_opt(&name)).await? {
            Some(full) if !is_done(&full) => Arc::new(full),
            _ => return Ok(Action::await_change()),
        }
    } else {
        run
    };
    let _executing = ctx.events.run_executing(&namespace, &name);
    let mut exec = Execution {
        ctx: &ctx,
        api,
        run: (*run).clone(),
        persisted: run.status.clone(),
        run_started: None,
        notifier: Default::default(),
    };
    let mut conflicts = 0;
    loop {
        match exec.drive().await {
            Ok(()) => break,
            Err(RunError::Conflict) if conflicts < MAX_CONFLICTS => {
                conflicts += 1;
                // Someone wrote the run since we read it: continue from its current state.
                let fresh = with_api_retries(|| exec.api.get_opt(&name)).await?;
                match fresh {
                    Some(r) if !is_done(&r) => {
                        exec.persisted = r.status.clone();
                        exec.run = r;
                    }
                    _ => break,
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Action::await_change())
}

/// What to do after a failed reconcile.
pub fn error_policy(_run: Arc<RecoveryRun>, err: &RunError, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_error(CONTROLLER, err.category());
    tracing::warn!(error = %err, "run reconcile failed");
    match err {
        RunError::Conflict => Action::requeue(Duration::from_millis(200)),
        RunError::Api(_) => Action::requeue(Duration::from_secs(1)),
        _ => Action::requeue(Duration::from_secs(30)),
    }
}

/// How executing a step (with its retries) ended.
enum StepOutcome {
    /// The last attempt's result.
    Finished(Result<StepOutput, StepFailure>),
    /// The process is shutting down; the step stays Running for the next executor.
    Interrupted,
    /// The run was cancelled while the step (one that only waits) was waiting.
    Cancelled,
}

/// Step statuses for `run`: one per step, keeping what was recorded.
fn normalize_steps(spec: &RecoveryRunSpec, status: &mut RecoveryRunStatus) {
    normalize(&spec.steps, &mut status.steps);
    normalize(&spec.finally, &mut status.finally);
}

fn normalize(steps: &[lifeboat_api::Step], statuses: &mut Vec<StepStatus>) {
    statuses.truncate(steps.len());
    for (i, step) in steps.iter().enumerate() {
        if statuses.len() <= i {
            statuses.push(StepStatus::default());
        }
        let s = &mut statuses[i];
        s.index = u32::try_from(i).unwrap_or(u32::MAX);
        if s.title.is_none() {
            s.title = Some(step.display_name());
        }
        if s.type_.is_none() {
            s.type_ = Some(step.type_);
        }
    }
}

/// Sets the run's `Success` condition (the seed's shape) to `state` for `reason`.
fn set_success(
    status: &mut RecoveryRunStatus,
    state: &str,
    reason: &str,
    message: String,
    now: Time,
) {
    conditions::set_condition(
        &mut status.conditions,
        Condition::new(TYPE_SUCCESS, state, reason, message, now),
    );
}

/// Records a step's success in its status (its outputs go to the run's values).
fn record_success(s: &mut StepStatus, out: StepOutput, now: Time) {
    s.phase = StepPhase::Succeeded;
    s.finished_at = Some(now);
    s.message = Some(out.message);
    s.rendered = out.rendered;
    s.evidence = out.evidence;
    s.approvals = out.approvals;
    if out.job_name.is_some() {
        s.job_name = out.job_name;
    }
}

/// Records a step's failure in its status.
fn record_failure(s: &mut StepStatus, f: StepFailure, now: Time) {
    s.phase = StepPhase::Failed;
    s.finished_at = Some(now);
    s.message = Some(f.message);
    s.evidence = f.evidence;
    s.approvals = f.approvals;
    if let Some(r) = f.rendered {
        s.rendered = Some(*r);
    }
    if f.job_name.is_some() {
        s.job_name = f.job_name;
    }
}

fn progress(done: usize, total: usize) -> String {
    format!("{done}/{total}")
}

/// What a run's status write reads back: the new metadata (resourceVersion) and the status
/// as the server stored it.
#[derive(serde::Deserialize)]
struct StatusWritten {
    metadata: ObjectMeta,
    #[serde(default)]
    status: Option<RecoveryRunStatus>,
}

struct Execution<'a> {
    ctx: &'a Context,
    api: Api<RecoveryRun>,
    run: RecoveryRun,
    /// The status as last read from or written to the API server: a write that conflicts
    /// only because someone changed the spec or metadata (e.g. `spec.cancel`) is retried
    /// when the server's status is still this one.
    persisted: Option<RecoveryRunStatus>,
    /// When this process started the run (for the duration metric).
    run_started: Option<Instant>,
    /// The plan's notifications and their deliveries in flight.
    notifier: notifications::Notifier,
}

impl Execution<'_> {
    fn name(&self) -> String {
        self.run.metadata.name.clone().unwrap_or_default()
    }

    /// The outputs of the steps so far (`.Values`).
    fn values(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        self.run
            .status
            .as_ref()
            .map(|s| s.values.clone())
            .unwrap_or_default()
    }

    fn status(&mut self) -> &mut RecoveryRunStatus {
        self.run.status.get_or_insert_with(Default::default)
    }

    fn event(&self, type_: EventType, reason: &str, action: &str, note: impl Into<String>) {
        let reference = self.run.object_ref(&());
        self.ctx
            .events
            .publish(reference, type_, reason, action, note);
    }

    /// An event about step `i` (regarding the run at `fieldPath: spec.steps[i]`, so each
    /// step's events stay apart).
    fn step_event(
        &self,
        i: usize,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        let mut reference = self.run.object_ref(&());
        reference.field_path = Some(format!("spec.steps[{i}]"));
        self.ctx
            .events
            .publish(reference, type_, reason, action, note);
    }

    /// Persists the status with the run's resourceVersion as precondition.
    async fn write(&mut self) -> Result<(), RunError> {
        let name = self.name();
        let pp = PostParams::default();
        let mut conflicts = 0;
        loop {
            let written = {
                let body = writes::StatusOnly::of(&self.run, &self.run.status);
                with_api_retries(|| {
                    writes::replace_status::<_, StatusWritten>(
                        &self.ctx.client,
                        self.api.resource_url(),
                        &name,
                        &pp,
                        &body,
                    )
                })
                .await
            };
            match written {
                Ok(StatusWritten { metadata, status }) => {
                    // The spec is the one this write was made from: it was conditional on
                    // the resourceVersion, and a status write leaves the spec alone.
                    self.persisted = status.clone();
                    self.run.metadata = metadata;
                    self.run.status = status;
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 409 && conflicts < MAX_CONFLICTS => {
                    conflicts += 1;
                    if !self.adopt_spec_change(&name).await? {
                        return Err(RunError::Conflict);
                    }
                }
                Err(kube::Error::Api(s)) if s.code == 409 => return Err(RunError::Conflict),
                Err(e) => {
                    self.ctx.metrics.api_error(api_errors::category(&e));
                    return Err(e.into());
                }
            }
        }
    }

    /// After a conflict: if nobody else wrote the status (only the spec or metadata
    /// changed, e.g. `spec.cancel`) and the steps are the ones executing, takes the new
    /// spec and metadata and keeps this execution's status. Otherwise the caller starts
    /// over from the server's state.
    async fn adopt_spec_change(&mut self, name: &str) -> Result<bool, RunError> {
        let Some(fresh) = with_api_retries(|| self.api.get_opt(name)).await? else {
            return Ok(false);
        };
        if fresh.status != self.persisted || fresh.spec.steps != self.run.spec.steps {
            return Ok(false);
        }
        self.run.metadata = fresh.metadata;
        self.run.spec = fresh.spec;
        Ok(true)
    }

    async fn drive(&mut self) -> Result<(), RunError> {
        let n = self.run.spec.steps.len();
        if self.status().phase.is_finished() {
            if !retry_requested(&self.run) {
                return Ok(());
            }
            self.begin_retry().await?;
        }
        let status = self.run.status.get_or_insert_with(Default::default);
        normalize_steps(&self.run.spec, status);

        let (steps, finally) = match validation::validate_run(&self.run) {
            Ok(run) => {
                self.notifier.targets = Arc::new(run.notifications);
                (run.steps, run.finally)
            }
            Err(problems) => return self.fail_invalid(&problems).await,
        };
        if self.status().phase == RunPhase::Finalizing {
            return self.run_finally(&finally).await;
        }

        let first = self
            .status()
            .steps
            .iter()
            .position(|s| s.phase != StepPhase::Succeeded)
            .unwrap_or(n);
        if first == n {
            // Every step already succeeded (crash after the last step's write is impossible:
            // it carries the outcome), or there are no steps.
            let now = self.ctx.now();
            self.complete(now);
            return self.end(&finally, |_| {}).await;
        }

        // One status write per step that acts: the outcomes (and outputs) of the steps
        // finished since the last write are written together with the next acting step's
        // start, in the write that `start_step` makes before that step acts. Crash safety
        // holds: a step acts only after a write recording it Running has been persisted, and
        // that same write carries every earlier step's outcome and outputs. If the process
        // dies after step i acted but before that write, the persisted status still shows
        // step i Running and the next executor runs it again — exactly as when it dies
        // between step i's effect and a separate "finished" write; merging adds no window in
        // which a step's effect is not preceded by its Running record. The reads in between
        // (see `start_needs_write`) are read again. The run's outcome (a failed step, or the
        // last one) is written at once. A step's outcome Event is sent once it is written.
        let mut unwritten: Vec<(usize, bool)> = Vec::new();
        for (i, step) in steps.iter().enumerate().skip(first) {
            if self.cancel_requested() {
                let done = std::mem::take(&mut unwritten);
                self.cancel(i, None);
                return self
                    .end(&finally, |exec| {
                        for (done, ok) in done {
                            exec.step_finished_event(done, &steps[done], ok);
                        }
                    })
                    .await;
            }
            let first_start = self.status().phase == RunPhase::Pending;
            // A run's first start is written before it is announced, so that a restart
            // does not announce it twice.
            let persist =
                start_needs_write(step) || (first_start && self.notifies(RunEvent::Started));
            self.start_step(i, step, persist).await?;
            if persist {
                for (done, ok) in std::mem::take(&mut unwritten) {
                    self.step_finished_event(done, &steps[done], ok);
                }
                if self.run.spec.is_cancelled() {
                    // Learnt from the write that started the step: it has not acted.
                    self.cancel(i, Some("cancelled before it acted"));
                    return self.end(&finally, |_| {}).await;
                }
            }
            let started = Instant::now();
            let result = match self.execute_with_retries(i, step).await? {
                StepOutcome::Finished(result) => result,
                // Shutting down: leave the step Running; the next executor re-executes it.
                StepOutcome::Interrupted => return Ok(()),
                StepOutcome::Cancelled => {
                    self.cancel(i, Some("cancelled while waiting"));
                    return self.end(&finally, |_| {}).await;
                }
            };
            let ok = result.is_ok();
            self.ctx.metrics.step_finished(
                step.step_type().as_str(),
                if ok { "Succeeded" } else { "Failed" },
                started.elapsed(),
            );
            self.finish_step(i, step, result);
            unwritten.push((i, ok));
            if self.status().phase.is_finished() {
                return self
                    .end(&finally, |exec| {
                        for (done, ok) in unwritten {
                            exec.step_finished_event(done, &steps[done], ok);
                        }
                    })
                    .await;
            }
        }
        Ok(())
    }

    /// The event of step `i`'s outcome (once it is persisted).
    fn step_finished_event(&mut self, i: usize, step: &ValidatedStep, ok: bool) {
        let title = &step.title;
        if ok {
            self.step_event(
                i,
                EventType::Normal,
                "StepSucceeded",
                "ExecuteStep",
                format!("step {} ({title}) succeeded", i + 1),
            );
        } else {
            let msg = self
                .status()
                .steps
                .get(i)
                .and_then(|s| s.message.clone())
                .unwrap_or_default();
            self.step_event(
                i,
                EventType::Warning,
                "StepFailed",
                "ExecuteStep",
                format!("step {} ({title}) failed: {msg}", i + 1),
            );
        }
        // Each decision of an approval step: who, when and why, as the status records it.
        let decisions = self
            .status()
            .steps
            .get(i)
            .map(|s| s.approvals.clone())
            .unwrap_or_default();
        for d in decisions {
            let (type_, reason, verb) = match d.decision {
                ApprovalDecision::Approve => (EventType::Normal, "Approved", "approved"),
                ApprovalDecision::Reject => (EventType::Warning, "Rejected", "rejected"),
            };
            let when = d.time.map(|t| t.0.to_string()).unwrap_or_default();
            let why = d.reason.map(|r| format!(": {r}")).unwrap_or_default();
            self.step_event(
                i,
                type_,
                reason,
                "RecordDecision",
                format!(
                    "step {} ({title}) {verb} by {} at {when}{why}",
                    i + 1,
                    d.approver
                ),
            );
        }
    }

    /// Marks step `i` Running (attempts+1) and the run Running, and persists it if
    /// `persist` (otherwise the next write does).
    async fn start_step(
        &mut self,
        i: usize,
        step: &ValidatedStep,
        persist: bool,
    ) -> Result<(), RunError> {
        let now = self.ctx.now();
        let n = self.run.spec.steps.len();
        let cluster = step.cluster.clone();
        let first_start = self.status().phase == RunPhase::Pending;
        // A dry run treats an approval as granted: it does not pause.
        let approval = match &step.action {
            StepAction::Approval(a) if !self.run.spec.is_dry_run() => Some(a),
            _ => None,
        };
        {
            let status = self.status();
            status.phase = if approval.is_some() {
                RunPhase::WaitingForApproval
            } else {
                RunPhase::Running
            };
            status.current_step = Some(u32::try_from(i).unwrap_or(u32::MAX));
            status.progress = Some(progress(i, n));
            if status.started_at.is_none() {
                status.started_at = Some(now.clone());
            }
            status.message = Some(format!("executing step {} of {n}", i + 1));
            set_success(
                status,
                STATUS_UNKNOWN,
                REASON_RUNNING,
                format!("executing step {} of {n}", i + 1),
                now.clone(),
            );
            let s = &mut status.steps[i];
            s.phase = StepPhase::Running;
            s.attempts += 1;
            if s.started_at.is_none() {
                s.started_at = Some(now);
            }
            s.finished_at = None;
            s.cluster = cluster;
        }
        if persist {
            self.write().await?;
        }
        if self.run_started.is_none() {
            self.run_started = Some(Instant::now());
        }
        if first_start {
            let since_alert = alert_received_at(&self.run)
                .map(|t| self.ctx.clock.now().duration_since(t))
                .and_then(|d| Duration::try_from(d).ok())
                .unwrap_or_default();
            self.ctx.metrics.run_started(since_alert);
            // Held back briefly: a quick run's outcome Event reports its start too.
            self.ctx.events.publish_coalesced(
                self.run.object_ref(&()),
                EventType::Normal,
                "RunStarted",
                "StartRun",
                format!("executing {n} step(s)"),
            );
            self.notify(RunEvent::Started).await;
        }
        let title = &step.title;
        if let Some(a) = approval {
            self.step_event(
                i,
                EventType::Normal,
                "WaitingForApproval",
                "RequestApproval",
                format!(
                    "step {} of {n} ({title}) waits for {} approval(s) within {}: `lifeboat approve {}`{}",
                    i + 1,
                    a.required,
                    GoDuration(step.timeout),
                    self.name(),
                    a.message
                        .as_ref()
                        .map(|m| format!(" — {m}"))
                        .unwrap_or_default()
                ),
            );
            self.notify(RunEvent::WaitingForApproval).await;
        }
        // Held back briefly: a quick step's outcome Event reports its start too.
        let mut reference = self.run.object_ref(&());
        reference.field_path = Some(format!("spec.steps[{i}]"));
        self.ctx.events.publish_coalesced(
            reference,
            EventType::Normal,
            "StepStarted",
            "ExecuteStep",
            format!("step {} of {n} ({title}) started", i + 1),
        );
        Ok(())
    }

    /// Executes step `i` with its retry policy.
    async fn execute_with_retries(
        &mut self,
        i: usize,
        step: &ValidatedStep,
    ) -> Result<StepOutcome, RunError> {
        let mut backoff = step.retries.backoff;
        let sa_namespace = self.run.namespace().unwrap_or_default();
        let sa = self.run.spec.service_account_name.clone();
        let mut attempt = 1u32;
        loop {
            let values = self.values();
            let client = self
                .ctx
                .clusters
                .client_for(
                    step.cluster.as_deref(),
                    sa.as_deref().map(|sa| (sa_namespace.as_str(), sa)),
                )
                .await;
            let result = match client {
                Err(e) => Err(StepFailure::from_cluster(e)),
                Ok(client) => {
                    let input = StepInput {
                        ctx: self.ctx,
                        run: &self.run,
                        index: i,
                        step,
                        values: &values,
                        client,
                        dry_run: self.run.spec.is_dry_run(),
                        attempt,
                    };
                    tokio::select! {
                        r = executor::execute_step(&input) => r,
                        () = self.ctx.shutdown.cancelled() => return Ok(StepOutcome::Interrupted),
                        () = cancellation(self.ctx, self.key()), if only_waits(step) => {
                            return Ok(StepOutcome::Cancelled);
                        }
                    }
                }
            };
            match result {
                Err(f) if f.retryable && attempt <= step.retries.limit => {
                    tracing::info!(step = i, attempt, error = %f.message, ?backoff, "step attempt failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = self.ctx.shutdown.cancelled() => return Ok(StepOutcome::Interrupted),
                    }
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                    {
                        let s = self.step_status_mut(i);
                        s.attempts += 1;
                        s.message = Some(format!("retrying after: {}", f.message));
                    }
                    self.write().await?;
                }
                other => return Ok(StepOutcome::Finished(other)),
            }
        }
    }

    /// Records the outcome of step `i`; for a failure or the last step, the run's outcome.
    fn finish_step(
        &mut self,
        i: usize,
        step: &ValidatedStep,
        result: Result<StepOutput, StepFailure>,
    ) {
        let now = self.ctx.now();
        let n = self.run.spec.steps.len();
        let title = &step.title;
        let status = self.status();
        match result {
            Ok(mut out) => {
                status.values.extend(std::mem::take(&mut out.values));
                record_success(&mut status.steps[i], out, now.clone());
                status.progress = Some(progress(i + 1, n));
                if i + 1 == n {
                    self.complete(now);
                }
            }
            Err(f) => {
                let (phase, reason, message, skipped) = if f.abort {
                    (
                        RunPhase::Aborted,
                        REASON_ABORTED,
                        format!(
                            "aborted at step {} ({title}): {}; nothing after it ran",
                            i + 1,
                            f.message
                        ),
                        format!("not run: the check in step {} did not hold", i + 1),
                    )
                } else {
                    (
                        RunPhase::Failed,
                        REASON_FAILED,
                        format!("step {} ({title}) failed: {}", i + 1, f.message),
                        format!("not run: step {} failed", i + 1),
                    )
                };
                record_failure(&mut status.steps[i], f, now.clone());
                for later in status.steps.iter_mut().skip(i + 1) {
                    later.phase = StepPhase::Skipped;
                    later.message = Some(skipped.clone());
                }
                status.phase = phase;
                status.current_step = Some(u32::try_from(i).unwrap_or(u32::MAX));
                status.finished_at = Some(now.clone());
                status.message = Some(message.clone());
                set_success(status, STATUS_FALSE, reason, message, now);
            }
        }
    }

    /// Sets the run Completed, with the seed's `Success` condition.
    fn complete(&mut self, now: Time) {
        let n = self.run.spec.steps.len();
        let dry = self.run.spec.is_dry_run();
        let status = self.status();
        status.phase = RunPhase::Completed;
        status.progress = Some(progress(n, n));
        status.current_step = None;
        status.finished_at = Some(now.clone());
        status.message = Some(if dry {
            format!("dry run: all {n} step(s) completed; nothing was changed")
        } else {
            format!("all {n} step(s) completed")
        });
        set_success(
            status,
            STATUS_TRUE,
            REASON_COMPLETED,
            MESSAGE_COMPLETED.to_string(),
            now,
        );
    }

    /// Fails an invalid run without executing anything.
    async fn fail_invalid(&mut self, problems: &[String]) -> Result<(), RunError> {
        let now = self.ctx.now();
        let message = format!("the run is invalid: {}", problems.join("; "));
        {
            let status = self.status();
            status.phase = RunPhase::Failed;
            status.finished_at = Some(now.clone());
            status.message = Some(message.clone());
            for s in &mut status.steps {
                s.phase = StepPhase::Skipped;
                s.message = Some("not run: the run is invalid".to_string());
            }
            set_success(status, STATUS_FALSE, REASON_INVALID, message.clone(), now);
        }
        self.write().await?;
        self.event(EventType::Warning, "RunInvalid", "ValidateRun", message);
        self.after_finish();
        self.notify_finished().await
    }

    /// Metrics, events and plan status once the run has finished.
    fn after_finish(&mut self) {
        let phase = self
            .run
            .status
            .as_ref()
            .map(|s| s.phase)
            .unwrap_or_default();
        let duration = self.run_started.map(|t| t.elapsed()).unwrap_or_default();
        self.ctx.metrics.run_finished(phase.as_str(), duration);
        let message = self
            .run
            .status
            .as_ref()
            .and_then(|s| s.message.clone())
            .unwrap_or_default();
        match phase {
            RunPhase::Completed => self.event(
                EventType::Normal,
                "RunCompleted",
                "FinishRun",
                format!("{message} in {}", GoDuration(duration)),
            ),
            RunPhase::Aborted => self.event(EventType::Warning, "RunAborted", "FinishRun", message),
            RunPhase::Cancelled => {
                self.event(EventType::Normal, "RunCancelled", "FinishRun", message)
            }
            _ => self.event(EventType::Warning, "RunFailed", "FinishRun", message),
        }
        self.report_last_run(phase.as_str());
    }

    /// Reports the run as its plan's last run (written coalesced, see [`crate::last_run`]).
    fn report_last_run(&self, phase: &str) {
        let Some(plan) = &self.run.spec.plan_name else {
            return;
        };
        let namespace = self.run.namespace().unwrap_or_default();
        self.ctx.last_runs.report(
            &namespace,
            plan,
            json!({
                "lastRun": self.name(),
                "lastRunPhase": phase,
                "lastRunTime": self.run.status.as_ref().and_then(|s| s.started_at.clone()),
            }),
        );
    }
}

/// When the run's alert was received: the sub-second stamp the webhook put on the alert
/// (copied onto the run), else the run's creation (whole seconds).
fn alert_received_at(run: &RecoveryRun) -> Option<jiff::Timestamp> {
    run.annotations()
        .get(lifeboat_api::ANNOTATION_RECEIVED_AT)
        .and_then(|t| t.parse().ok())
        .or_else(|| run.metadata.creation_timestamp.as_ref().map(|t| t.0))
}
