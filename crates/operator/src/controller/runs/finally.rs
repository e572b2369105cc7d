//! `finally` steps: they run once the steps have ended, whatever the outcome.
//!
//! The outcome is persisted first (`status.outcome`, phase `Finalizing`), so a restarted
//! controller knows the steps are over and resumes at the first finally step that has not
//! finished. Each finally step runs once (with its own retry policy) even if an earlier one
//! failed; `.Run.Phase` and `.Run.Message` tell their templates how the steps ended. The
//! run then takes the outcome as its phase — a Completed run whose finally step failed
//! becomes Failed, since something the plan asked for did not happen.

use kube::runtime::events::EventType;
use lifeboat_api::conditions::{REASON_FAILED, STATUS_FALSE};
use lifeboat_api::{RunPhase, StepPhase, StepStatus};
use lifeboat_engine::ValidatedStep;

use super::{Execution, RunError, StepOutcome, record_failure, record_success, set_success};

impl Execution<'_> {
    /// Persists the end of the steps (the phase `finish_step`, `complete` or `cancel` set);
    /// `persisted` then emits the events of what that write recorded. With finally steps,
    /// the phase is kept as the outcome while they run.
    pub(super) async fn end(
        &mut self,
        finally: &[ValidatedStep],
        persisted: impl FnOnce(&mut Self),
    ) -> Result<(), RunError> {
        if !finally.is_empty() {
            let status = self.status();
            status.outcome = Some(status.phase);
            status.phase = RunPhase::Finalizing;
        }
        self.write().await?;
        persisted(self);
        if finally.is_empty() {
            self.after_finish();
            self.notify_finished().await
        } else {
            self.run_finally(finally).await
        }
    }

    /// The status of step `index`, counting the finally steps after the steps.
    pub(super) fn step_status_mut(&mut self, index: usize) -> &mut StepStatus {
        let n = self.run.spec.steps.len();
        let status = self.status();
        if index < n {
            &mut status.steps[index]
        } else {
            &mut status.finally[index - n]
        }
    }

    /// Runs the finally steps not finished yet, then gives the run its final phase.
    pub(super) async fn run_finally(&mut self, finally: &[ValidatedStep]) -> Result<(), RunError> {
        let n = self.run.spec.steps.len();
        for (j, step) in finally.iter().enumerate() {
            let done = self
                .status()
                .finally
                .get(j)
                .is_some_and(|s| matches!(s.phase, StepPhase::Succeeded | StepPhase::Failed));
            if done {
                continue;
            }
            let now = self.ctx.now();
            {
                let s = self.step_status_mut(n + j);
                s.phase = StepPhase::Running;
                s.attempts += 1;
                s.started_at.get_or_insert(now);
                s.finished_at = None;
                s.cluster = step.cluster.clone();
            }
            self.write().await?;
            // Executor indexes count finally steps after the steps (distinct Job names).
            let result = match self.execute_with_retries(n + j, step).await? {
                StepOutcome::Finished(result) => result,
                // Shutting down, or (never for a finally step) cancelled: the next executor
                // runs it again.
                StepOutcome::Interrupted | StepOutcome::Cancelled => return Ok(()),
            };
            let now = self.ctx.now();
            let ok = result.is_ok();
            let title = &step.title;
            let note = match result {
                Ok(mut out) => {
                    let values = std::mem::take(&mut out.values);
                    self.status().values.extend(values);
                    record_success(self.step_status_mut(n + j), out, now);
                    format!("finally step {} ({title}) succeeded", j + 1)
                }
                Err(f) => {
                    let note = format!("finally step {} ({title}) failed: {}", j + 1, f.message);
                    record_failure(self.step_status_mut(n + j), f, now);
                    note
                }
            };
            self.write().await?;
            let (type_, reason) = if ok {
                (EventType::Normal, "FinallyStepSucceeded")
            } else {
                (EventType::Warning, "FinallyStepFailed")
            };
            let mut reference = kube::Resource::object_ref(&self.run, &());
            reference.field_path = Some(format!("spec.finally[{j}]"));
            self.ctx
                .events
                .publish(reference, type_, reason, "ExecuteStep", note);
        }
        self.conclude_finally();
        self.write().await?;
        self.after_finish();
        self.notify_finished().await
    }

    /// The run's phase once the finally steps are done: the outcome, except that a failed
    /// finally step fails a Completed run.
    fn conclude_finally(&mut self) {
        let now = self.ctx.now();
        let status = self.status();
        let outcome = status.outcome.take().unwrap_or(RunPhase::Completed);
        let failed: Vec<String> = status
            .finally
            .iter()
            .enumerate()
            .filter(|(_, s)| s.phase == StepPhase::Failed)
            .map(|(j, s)| {
                format!(
                    "finally step {} failed: {}",
                    j + 1,
                    s.message.as_deref().unwrap_or("-")
                )
            })
            .collect();
        status.phase = outcome;
        if failed.is_empty() {
            return;
        }
        let message = format!(
            "{}; {}",
            status.message.as_deref().unwrap_or(outcome.as_str()),
            failed.join("; ")
        );
        status.message = Some(message.clone());
        if outcome == RunPhase::Completed {
            status.phase = RunPhase::Failed;
            set_success(status, STATUS_FALSE, REASON_FAILED, message, now);
        }
    }
}
