//! The plans' `status.lastRun` (name, phase, start time), written at most once per plan per
//! [`INTERVAL`]: when runs of a plan finish in quick succession (a burst of alerts, a
//! drill repeated) the plan is patched once with the newest outcome instead of once per
//! run. The newest outcome is never dropped: a report that arrives while a write is under
//! way schedules another, and [`LastRuns::flush`] writes whatever waits when the
//! controllers stop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Client, Resource};
use lifeboat_api::RecoveryPlan;
use serde_json::Value;

use crate::api_errors::with_api_retries;
use crate::writes::{self, Part};

/// The shortest time between two writes of one plan's last run.
pub const INTERVAL: Duration = Duration::from_millis(500);

type Key = (String, String);

/// Pending last-run patches by (namespace, plan).
#[derive(Clone)]
pub struct LastRuns {
    client: Client,
    pending: Arc<Mutex<HashMap<Key, Value>>>,
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
            pending: Arc::default(),
        }
    }

    /// Records `status` (a merge patch of the plan's status) as the last run of `plan`; it
    /// is written within [`INTERVAL`], together with any later report.
    pub fn report(&self, namespace: &str, plan: &str, status: Value) {
        let key = (namespace.to_string(), plan.to_string());
        let first = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), status)
            .is_none();
        if first {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(INTERVAL).await;
                this.write(&key).await;
            });
        }
    }

    /// Writes every pending report now (when the controllers stop).
    pub async fn flush(&self) {
        let keys: Vec<Key> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        for key in keys {
            self.write(&key).await;
        }
    }

    async fn write(&self, key: &Key) {
        let Some(status) = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key)
        else {
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
    use lifeboat_testkit::{Backend, TestCluster, scenarios};
    use serde_json::json;

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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let status = api
                .get_status("p")
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            if status.last_run.as_deref() == Some("run-3") {
                assert_eq!(status.last_run_phase.as_deref(), Some("Completed"));
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            sim.stats().count("patch", "recoveryplans/status") - before,
            1
        );

        // Reported just before the controllers stop: written by the flush, not lost.
        last_runs.report("default", "p", json!({"lastRun": "run-4"}));
        last_runs.flush().await;
        let status = api
            .get_status("p")
            .await
            .unwrap()
            .status
            .unwrap_or_default();
        assert_eq!(status.last_run.as_deref(), Some("run-4"));
    }
}
