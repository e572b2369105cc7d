//! Shared helpers of the operator's API-level tests: simulated clusters with lifeboat's CRDs,
//! the controller running in-process, and waits on conditions with deadlines.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use kube::Client;
use lifeboat_api::{ReceivedAlert, RecoveryPlan, RecoveryRun};
use lifeboat_operator::{ControllerConfig, OperatorError, serve};
use lifeboat_sim::SimCluster;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[allow(unused_imports)] // each test file uses a different subset
pub use lifeboat_testkit::scenarios::{
    self, SEED_ALERT, SEED_PLAN, SEED_RUN, create, register_cluster, seed_pod, yaml,
};
#[allow(unused_imports)]
pub use lifeboat_testkit::wait::await_object;
pub use lifeboat_testkit::{Backend, LIFEBOAT_NS, TestCluster};

/// How long any wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A simulated cluster with lifeboat's CRDs and namespaces, for tests that read the
/// simulator's store or inject its faults.
pub async fn start_cluster(name: &str) -> (SimCluster, Client) {
    let cluster = TestCluster::start_on(name, Backend::Sim).await;
    (cluster.sim().unwrap().clone(), cluster.client())
}

/// The controller running in-process against `client`.
pub struct Controller {
    pub shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), OperatorError>>>,
}

impl Controller {
    pub fn start(client: Client) -> Controller {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let cfg = ControllerConfig {
            namespace: LIFEBOAT_NS.to_string(),
            webhook: None,
            health_addr: "127.0.0.1:0".parse().unwrap(),
            leader_election: false,
            lease_name: "lifeboat-test".to_string(),
            identity: "test".to_string(),
            addr_file: None,
            alert_retention: None,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(client, cfg, shutdown.clone()));
        Controller {
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the controller gracefully and checks it exited cleanly.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let r = tokio::time::timeout(DEADLINE, task)
                .await
                .expect("controller did not stop in time")
                .expect("controller task panicked");
            r.expect("controller returned an error");
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits until the run has finished (Completed or Failed) and returns it.
pub async fn wait_run_finished(client: &Client, namespace: &str, name: &str) -> RecoveryRun {
    scenarios::wait_run_finished(client, namespace, name, &scenarios::no_diag).await
}

/// Waits until the alert has been processed and returns it.
pub async fn wait_alert_processed(client: &Client, namespace: &str, name: &str) -> ReceivedAlert {
    scenarios::wait_alert_processed(client, namespace, name, &scenarios::no_diag).await
}

/// Waits until the plan's status has a validation result and returns it.
pub async fn wait_plan_validated(client: &Client, namespace: &str, name: &str) -> RecoveryPlan {
    scenarios::wait_plan_validated(client, namespace, name, &scenarios::no_diag).await
}
