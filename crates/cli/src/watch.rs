//! Following a RecoveryRun until it finishes, reporting each transition as it is seen.
//! Shared by `runs watch`, `drill`, `trigger --wait` and `demo`.

use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::runtime::WatchStreamExt;
use lifeboat_api::{RecoveryRun, RunPhase, StepPhase};
use tokio::time::Instant;

use crate::output;

/// One change seen on a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The run's phase changed.
    Run {
        phase: RunPhase,
        message: Option<String>,
    },
    /// A step's phase (or attempt count) changed.
    Step {
        index: usize,
        total: usize,
        title: String,
        phase: StepPhase,
        attempts: u32,
        cluster: Option<String>,
        message: Option<String>,
    },
}

impl Transition {
    /// One line for a person, without the time label.
    pub fn describe(&self) -> String {
        match self {
            Transition::Run { phase, message } => match message {
                Some(m) => format!("run {}: {m}", phase.as_str()),
                None => format!("run {}", phase.as_str()),
            },
            Transition::Step {
                index,
                total,
                title,
                phase,
                attempts,
                cluster,
                message,
            } => {
                let mut line = format!(
                    "step {}/{total} {:<10} {title}",
                    index + 1,
                    output::step_phase(*phase)
                );
                if *phase == StepPhase::Running {
                    if let Some(c) = cluster {
                        line.push_str(&format!("  (cluster {c})"));
                    }
                    if *attempts > 1 {
                        line.push_str(&format!("  (attempt {attempts})"));
                    }
                }
                if matches!(phase, StepPhase::Failed | StepPhase::Succeeded)
                    && let Some(m) = message
                {
                    line.push_str(&format!(": {m}"));
                }
                line
            }
        }
    }
}

/// Remembers what was last seen of a run, to report only what changed.
#[derive(Default, Debug)]
pub struct Tracker {
    phase: Option<RunPhase>,
    steps: Vec<Option<(StepPhase, u32)>>,
}

impl Tracker {
    /// What changed since the previous call. Steps come in order, before a run phase
    /// that finishes the run.
    pub fn update(&mut self, run: &RecoveryRun) -> Vec<Transition> {
        let mut out = Vec::new();
        let total = run.spec.steps.len();
        self.steps.resize(total, None);
        let phase = output::run_phase(run);
        let message = run.status.as_ref().and_then(|s| s.message.clone());
        let run_changed = self.phase != Some(phase);
        if run_changed && !phase.is_finished() {
            out.push(Transition::Run {
                phase,
                message: None,
            });
        }
        for index in 0..total {
            let Some(st) = output::step_status(run, index) else {
                continue;
            };
            let seen = (st.phase, st.attempts);
            if self.steps[index] == Some(seen) {
                continue;
            }
            let before = self.steps[index];
            self.steps[index] = Some(seen);
            if before.is_none() && st.phase == StepPhase::Pending {
                continue;
            }
            out.push(Transition::Step {
                index,
                total,
                title: output::step_title(run, index),
                phase: st.phase,
                attempts: st.attempts,
                cluster: st.cluster.clone(),
                message: st.message.clone(),
            });
        }
        if run_changed && phase.is_finished() {
            out.push(Transition::Run { phase, message });
        }
        self.phase = Some(phase);
        out
    }
}

/// How long to follow a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Give up if the run is still Pending this long after following started (no
    /// controller picked it up).
    pub pending: Option<Duration>,
    /// Give up if the run has not finished this long after following started.
    pub total: Option<Duration>,
}

/// Why following a run stopped before it finished.
#[derive(Debug)]
pub enum FollowError {
    Deleted(String),
    StillPending(String, Duration),
    NotFinished(String, Duration),
    Ended(String),
}

impl std::fmt::Display for FollowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FollowError::Deleted(n) => write!(f, "RecoveryRun {n} was deleted"),
            FollowError::StillPending(n, d) => write!(
                f,
                "RecoveryRun {n} is still Pending after {}: is a lifeboat controller \
                 running and watching this namespace?",
                output::duration(*d)
            ),
            FollowError::NotFinished(n, d) => write!(
                f,
                "RecoveryRun {n} has not finished after {}",
                output::duration(*d)
            ),
            FollowError::Ended(n) => write!(f, "the watch on RecoveryRun {n} ended"),
        }
    }
}

impl std::error::Error for FollowError {}

/// Watches run `name` until it is Completed or Failed, calling `on_change` with every
/// transition and the moment it was seen. Returns the finished run.
pub async fn follow(
    api: Api<RecoveryRun>,
    name: &str,
    limits: Limits,
    mut on_change: impl FnMut(Instant, &Transition, &RecoveryRun),
) -> Result<RecoveryRun, FollowError> {
    let started = Instant::now();
    let stream = kube::runtime::watcher::watch_object(api, name).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut tracker = Tracker::default();
    let mut left_pending = false;
    loop {
        let deadline = match (left_pending, limits.pending, limits.total) {
            (false, Some(p), Some(t)) => Some(started + p.min(t)),
            (false, Some(p), None) => Some(started + p),
            (_, _, Some(t)) => Some(started + t),
            _ => None,
        };
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
                Ok(item) => item,
                Err(_) => {
                    let waited = started.elapsed();
                    return Err(if left_pending {
                        FollowError::NotFinished(name.to_string(), waited)
                    } else {
                        FollowError::StillPending(name.to_string(), waited)
                    });
                }
            },
            None => stream.next().await,
        };
        match next {
            None => return Err(FollowError::Ended(name.to_string())),
            Some(Err(err)) => {
                tracing::warn!(run = name, error = %err, "watch error; retrying");
            }
            Some(Ok(None)) => {
                // Not created yet (or deleted after we saw it).
                if tracker.phase.is_some() {
                    return Err(FollowError::Deleted(name.to_string()));
                }
            }
            Some(Ok(Some(run))) => {
                let seen = Instant::now();
                for t in tracker.update(&run) {
                    on_change(seen, &t, &run);
                }
                let phase = output::run_phase(&run);
                if phase != RunPhase::Pending {
                    left_pending = true;
                }
                if phase.is_finished() {
                    return Ok(run);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use lifeboat_api::{RecoveryRunSpec, RecoveryRunStatus, StepStatus};

    fn run(phase: RunPhase, steps: &[(StepPhase, u32)]) -> RecoveryRun {
        let spec: RecoveryRunSpec = serde_json::from_value(serde_json::json!({
            "alertSpec": {"name": "a", "labels": {}},
            "steps": [
                {"type": "wait", "wait": {"apiVersion": "v1", "resource": "pods", "name": "p",
                  "fieldPath": "status.phase", "condition": "Exists"}},
                {"type": "wait", "title": "second", "wait": {"apiVersion": "v1",
                  "resource": "pods", "name": "p", "fieldPath": "status.phase",
                  "condition": "Exists"}}
            ]
        }))
        .unwrap();
        let mut r = RecoveryRun::new("r", spec);
        r.status = Some(RecoveryRunStatus {
            phase,
            steps: steps
                .iter()
                .enumerate()
                .map(|(i, (p, a))| StepStatus {
                    index: i as u32,
                    phase: *p,
                    attempts: *a,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        r
    }

    #[test]
    fn reports_only_changes_in_order() {
        let mut t = Tracker::default();
        let first = t.update(&run(RunPhase::Pending, &[]));
        assert_eq!(first.len(), 1, "the initial phase is reported: {first:?}");
        let next = t.update(&run(
            RunPhase::Running,
            &[(StepPhase::Running, 1), (StepPhase::Pending, 0)],
        ));
        assert_eq!(next.len(), 2, "run Running + step 1 Running: {next:?}");
        assert!(
            t.update(&run(
                RunPhase::Running,
                &[(StepPhase::Running, 1), (StepPhase::Pending, 0)]
            ))
            .is_empty()
        );
        let last = t.update(&run(
            RunPhase::Completed,
            &[(StepPhase::Succeeded, 1), (StepPhase::Succeeded, 1)],
        ));
        let kinds: Vec<String> = last.iter().map(Transition::describe).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(kinds[1].contains("second"), "{kinds:?}");
        assert!(kinds[2].starts_with("run Completed"), "{kinds:?}");
    }
}
