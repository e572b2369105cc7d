//! Run control: `spec.cancel` stops a run before its next step (a step that only waits
//! stops at once), and raising `spec.attempt` resumes a Failed or Aborted run at the step
//! that failed (`lifeboat runs cancel|retry`).

use kube::ResourceExt;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use lifeboat_api::conditions::{REASON_CANCELLED, REASON_RUNNING, STATUS_FALSE, STATUS_UNKNOWN};
use lifeboat_api::{AttemptRecord, RecoveryRun, RunPhase, StepPhase, StepStatus};
use lifeboat_engine::{StepAction, ValidatedStep};

use super::{CANCEL_POLL, Execution, RunError, progress, set_success};
use crate::context::Context;

/// Whether the run has finished and nobody asked for another attempt: nothing is left to do
/// for it.
pub fn is_done(run: &RecoveryRun) -> bool {
    run.status.as_ref().is_some_and(|s| s.phase.is_finished()) && !retry_requested(run)
}

/// Whether `spec.attempt` asks a Failed or Aborted run to resume.
pub(super) fn retry_requested(run: &RecoveryRun) -> bool {
    run.status
        .as_ref()
        .is_some_and(|s| s.phase.is_retryable() && run.spec.attempt() > s.attempt())
}

impl Execution<'_> {
    /// Whether someone asked the run to stop (`spec.cancel`, as this execution last read it
    /// or as the watch cache has it now).
    pub(super) fn cancel_requested(&self) -> bool {
        self.run.spec.is_cancelled()
            || self
                .ctx
                .runs
                .get(&self.key())
                .is_some_and(|r| r.spec.is_cancelled())
    }

    pub(super) fn key(&self) -> ObjectRef<RecoveryRun> {
        ObjectRef::new(&self.name()).within(&self.run.namespace().unwrap_or_default())
    }

    /// Starts the attempt `spec.attempt` asks for: records how the last one ended, resets
    /// the step it stopped at and every later step, keeps the values, and persists that
    /// before anything runs.
    pub(super) async fn begin_retry(&mut self) -> Result<(), RunError> {
        let now = self.ctx.now();
        let attempt = self.run.spec.attempt();
        let n = self.run.spec.steps.len();
        let status = self.status();
        let from = status
            .current_step
            .map(|i| i as usize)
            .or_else(|| {
                status
                    .steps
                    .iter()
                    .position(|s| s.phase != StepPhase::Succeeded)
            })
            .unwrap_or(0)
            .min(n);
        let previous = AttemptRecord {
            attempt: status.attempt(),
            phase: status.phase,
            failed_step: status.current_step,
            message: status.message.clone(),
            finished_at: status.finished_at.clone(),
        };
        status.previous_attempts.push(previous);
        for s in status.steps.iter_mut().skip(from) {
            reset(s);
        }
        // The finally steps run again at the end of the new attempt.
        for s in &mut status.finally {
            reset(s);
        }
        status.outcome = None;
        let message = format!("attempt {attempt}: resuming from step {}", from + 1);
        status.attempt = Some(attempt);
        status.phase = RunPhase::Running;
        status.finished_at = None;
        status.current_step = Some(u32::try_from(from).unwrap_or(u32::MAX));
        status.progress = Some(progress(from, n));
        status.message = Some(message.clone());
        set_success(status, STATUS_UNKNOWN, REASON_RUNNING, message.clone(), now);
        self.write().await?;
        self.event(EventType::Normal, "RunRetried", "RetryRun", message);
        Ok(())
    }

    /// Sets the run `Cancelled` before step `i` acts, or — with `stopped` — at step `i`,
    /// which was waiting or had not acted yet. Nothing after it runs (but `finally`).
    pub(super) fn cancel(&mut self, i: usize, stopped: Option<&str>) {
        let now = self.ctx.now();
        let n = self.run.spec.steps.len();
        let message = match stopped {
            Some(how) => format!(
                "cancelled at step {} of {n} ({how}); nothing after it ran",
                i + 1
            ),
            None if i == 0 => "cancelled before the first step; nothing ran".to_string(),
            None => format!("cancelled after step {i} of {n}; nothing after it ran"),
        };
        let status = self.status();
        let mut later = i;
        if let (Some(how), Some(s)) = (stopped, status.steps.get_mut(i)) {
            s.phase = StepPhase::Cancelled;
            s.finished_at = Some(now.clone());
            s.message = Some(how.to_string());
            later = i + 1;
        }
        for s in status.steps.iter_mut().skip(later) {
            s.phase = StepPhase::Skipped;
            s.message = Some("not run: the run was cancelled".to_string());
        }
        status.phase = RunPhase::Cancelled;
        status.current_step = (i < n).then(|| u32::try_from(i).unwrap_or(u32::MAX));
        status.finished_at = Some(now.clone());
        status.message = Some(message.clone());
        set_success(status, STATUS_FALSE, REASON_CANCELLED, message, now);
    }
}

/// Whether a step's start must be persisted before it executes: every step that acts
/// (patch, job, notify) or may wait (wait, check, approval) — its Running record is what
/// makes a restart execute it again rather than skip it, and what a user sees while it
/// waits. A `readField` changes nothing and answers within one request: it executes at
/// once, and its start is written with its outcome, before the next step that acts or with
/// the run's outcome. A crash before that write loses only a read, made again.
pub(super) fn start_needs_write(step: &ValidatedStep) -> bool {
    !matches!(step.action, StepAction::ReadField(_))
}

/// Steps that change nothing while they wait (approval, wait, check): cancelling the run
/// stops them at once instead of after their timeout.
pub(super) fn only_waits(step: &ValidatedStep) -> bool {
    matches!(
        step.action,
        StepAction::Approval(_) | StepAction::Wait(_) | StepAction::Check(_)
    )
}

/// Resolves once the watch cache shows the run cancelled. It polls the local cache: the
/// controller runtime runs one reconcile per object at a time, so the spec change cannot
/// reach the reconcile in flight as an event of its own.
pub(super) async fn cancellation(ctx: &Context, key: ObjectRef<RecoveryRun>) {
    loop {
        if ctx.runs.get(&key).is_some_and(|r| r.spec.is_cancelled()) {
            return;
        }
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

/// A step's status as before it ran, keeping its identity and attempt count.
fn reset(s: &mut StepStatus) {
    *s = StepStatus {
        index: s.index,
        title: s.title.clone(),
        type_: s.type_,
        attempts: s.attempts,
        ..StepStatus::default()
    };
}
