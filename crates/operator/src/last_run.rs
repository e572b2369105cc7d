//! The plans' `status.lastRun` (name, phase, start time), written at most once per plan per
//! [`INTERVAL`]: when runs of a plan finish in quick succession (a burst of alerts, a
//! drill repeated) the plan is patched once with the newest outcome instead of once per
//! run. The newest outcome is never dropped: a report that arrives while a write is under
//! way schedules another, and [`LastRuns::flush`] writes whatever waits when the
//! controllers stop.
//!
//! The writes also wait while the alert controller has alerts in hand, at most
//! [`MAX_DEFER`]: in an alert storm, where each plan has its own run and there is nothing
//! to fold, they come after the storm's runs instead of among them. Each is a write the API
//! server validates and stores and a plan event that every watch of plans decodes; in the
//! bench's 10 000-alert storm they took a fifth of the CPU per alert, slowing the alerts
//! that start recovery to write what is only a summary of runs already on record.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::{Client, Resource};
use lifeboat_api::RecoveryPlan;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::api_errors::with_api_retries;
use crate::writes::{self, Part};

/// The shortest time between two writes of one plan's last run.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The longest a last run waits for the alert controller to put its alerts down.
pub const MAX_DEFER: Duration = Duration::from_secs(10);
/// Last-run writes in flight at once.
const WRITERS: usize = 8;
/// The most due plans taken at once (the rest wait for the next round).
const BATCH: usize = 256;

type Key = (String, String);

/// The reports not yet written, and when each plan is due, under one lock: a report made
/// while a write is under way is either taken by that write or queued again.
#[derive(Default)]
struct Queue {
    /// The newest status patch of each plan, by (namespace, plan).
    pending: HashMap<Key, Value>,
    /// When each pending plan is due, oldest first: one writer task goes through them
    /// (a task per plan would hold thousands at once while a storm defers them).
    due: VecDeque<(Instant, Key)>,
}

/// Pending last-run patches by (namespace, plan).
#[derive(Clone)]
pub struct LastRuns {
    client: Client,
    queue: Arc<Mutex<Queue>>,
    reported: Arc<Notify>,
    writer_started: Arc<AtomicBool>,
    alerts: Arc<AlertsInHand>,
}

/// How many alerts the alert controller is processing now.
#[derive(Default)]
struct AlertsInHand {
    count: AtomicUsize,
    none: Notify,
}

impl AlertsInHand {
    fn hold(self: &Arc<Self>) -> ProcessingAlert {
        self.count.fetch_add(1, Ordering::SeqCst);
        ProcessingAlert(self.clone())
    }

    /// Returns once no alert is in hand, or at `until`.
    async fn none_until(&self, until: Instant) {
        crate::wait::until(&self.none, until, || self.count.load(Ordering::SeqCst) == 0).await;
    }
}

/// Held while the alert controller processes one alert ([`LastRuns::processing_alert`]).
pub struct ProcessingAlert(Arc<AlertsInHand>);

impl Drop for ProcessingAlert {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.none.notify_waiters();
        }
    }
}

impl std::fmt::Debug for LastRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LastRuns").finish_non_exhaustive()
    }
}

impl LastRuns {
    pub fn new(client: Client) -> Self {
        LastRuns {
            client,
            queue: Arc::default(),
            reported: Arc::default(),
            writer_started: Arc::default(),
            alerts: Arc::default(),
        }
    }

    /// Marks an alert in hand until the guard is dropped: the writes wait meanwhile.
    pub fn processing_alert(&self) -> ProcessingAlert {
        self.alerts.hold()
    }

    /// Records `status` (a merge patch of the plan's status) as the last run of `plan`; it
    /// is written after [`INTERVAL`] (and no alert in hand, at most [`MAX_DEFER`]),
    /// together with any later report.
    pub fn report(&self, namespace: &str, plan: &str, status: Value) {
        let key = (namespace.to_string(), plan.to_string());
        let first = {
            let mut queue = self.lock();
            let first = queue.pending.insert(key.clone(), status).is_none();
            if first {
                queue.due.push_back((Instant::now() + INTERVAL, key));
            }
            first
        };
        if first {
            if !self.writer_started.swap(true, Ordering::SeqCst) {
                tokio::spawn(self.clone().write_when_due());
            }
            self.reported.notify_one();
        }
    }

    /// The writer: writes each plan when it is due and no alert is in hand (or it has
    /// waited [`MAX_DEFER`] since it was reported), [`WRITERS`] at a time.
    async fn write_when_due(self) {
        loop {
            let next = self.lock().due.front().map(|(at, _)| *at);
            let Some(at) = next else {
                // `notify_one` keeps its permit for a report made before this wait.
                self.reported.notified().await;
                continue;
            };
            tokio::time::sleep_until(at).await;
            // At most MAX_DEFER after the oldest due plan was reported.
            self.alerts.none_until(at + MAX_DEFER - INTERVAL).await;
            let now = Instant::now();
            let keys: Vec<Key> = {
                let due = &mut self.lock().due;
                let mut keys = Vec::new();
                while keys.len() < BATCH
                    && let Some((at, _)) = due.front()
                    && *at <= now
                    && let Some((_, key)) = due.pop_front()
                {
                    keys.push(key);
                }
                keys
            };
            futures::stream::iter(keys)
                .for_each_concurrent(WRITERS, |key| {
                    let this = &self;
                    async move { this.write(&key).await }
                })
                .await;
        }
    }

    /// Writes every pending report now (when the controllers stop).
    pub async fn flush(&self) {
        let keys: Vec<Key> = self.lock().pending.keys().cloned().collect();
        for key in keys {
            self.write(&key).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn write(&self, key: &Key) {
        let Some(status) = self.lock().pending.remove(key) else {
            return;
        };
        let (namespace, plan) = key;
        let url = RecoveryPlan::url_path(&(), Some(namespace));
        let patch = Patch::Merge(serde_json::json!({ "status": status }));
        let pp = PatchParams::default();
        match with_api_retries(|| {
            writes::patch(&self.client, &url, plan, Part::Status, &pp, &patch)
        })
        .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => tracing::warn!(%plan, error = %e, "cannot record the last run on the plan"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use kube::Api;
    use lifeboat_api::RecoveryPlanStatus;
    use lifeboat_testkit::{Backend, TestCluster, scenarios};
    use serde_json::json;

    /// Waits (30 s at most) until `plan`'s last run is `run`; returns its status.
    async fn wait_last_run(api: &Api<RecoveryPlan>, plan: &str, run: &str) -> RecoveryPlanStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = api
                .get_status(plan)
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            if status.last_run.as_deref() == Some(run) {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "{status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn the_writes_wait_while_alerts_are_in_hand_and_no_longer_than_the_bound() {
        let alerts = Arc::new(AlertsInHand::default());
        let (first, second) = (alerts.hold(), alerts.hold());
        let waiting = alerts.none_until(Instant::now() + Duration::from_secs(3600));
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending());
        drop(first);
        assert!(
            futures::poll!(waiting.as_mut()).is_pending(),
            "one alert is still in hand"
        );
        drop(second);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("no alert in hand: the wait ends");

        // An alert that stays in hand holds the writes back only so long.
        let _stuck = alerts.hold();
        tokio::time::timeout(
            Duration::from_secs(10),
            alerts.none_until(Instant::now() + Duration::from_millis(50)),
        )
        .await
        .expect("the wait ends at its bound");
    }

    #[tokio::test]
    async fn a_burst_of_outcomes_is_one_write_of_the_newest() {
        let cluster = TestCluster::start_on("last-run", Backend::Sim).await;
        let client = cluster.client();
        scenarios::create(
            &client,
            scenarios::plan("p", json!({"app": "x"}), scenarios::pod_steps()),
            "default",
        )
        .await;
        let sim = cluster.sim().unwrap();
        let before = sim.stats().count("patch", "recoveryplans/status");
        let last_runs = LastRuns::new(client.clone());
        for (run, phase) in [
            ("run-1", "Completed"),
            ("run-2", "Failed"),
            ("run-3", "Completed"),
        ] {
            last_runs.report(
                "default",
                "p",
                json!({"lastRun": run, "lastRunPhase": phase}),
            );
        }
        let api: Api<RecoveryPlan> = Api::namespaced(client, "default");
        let status = wait_last_run(&api, "p", "run-3").await;
        assert_eq!(status.last_run_phase.as_deref(), Some("Completed"));
        assert_eq!(
            sim.stats().count("patch", "recoveryplans/status") - before,
            1
        );

        // Reported while an alert is in hand: written once it is put down.
        let in_hand = last_runs.processing_alert();
        last_runs.report("default", "p", json!({"lastRun": "run-4"}));
        drop(in_hand);
        wait_last_run(&api, "p", "run-4").await;

        // Reported just before the controllers stop: written by the flush, not lost.
        let _in_hand = last_runs.processing_alert();
        last_runs.report("default", "p", json!({"lastRun": "run-5"}));
        last_runs.flush().await;
        let status = api
            .get_status("p")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        assert_eq!(status.last_run.as_deref(), Some("run-5"));
    }
}
