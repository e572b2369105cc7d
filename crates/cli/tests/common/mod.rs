//! Helpers of the end-to-end tests: a simulated cluster in the test process and the real
//! `lifeboat controller` binary against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use lifeboat_api::RecoveryRun;
use lifeboat_sim::SimCluster;
use lifeboat_testkit::{Backend, ControllerProcess, TestCluster};
use serde_json::Value;

/// A cluster with the seed's pod, the real controller and the CLI.
pub mod harness;
/// The workload of the crash-loop and API-fault tests.
pub mod workload;

#[allow(unused_imports)] // each test file uses a different subset
pub use lifeboat_testkit::scenarios::{self, SEED_ALERT, SEED_PLAN, SEED_RUN, seed_pod};
#[allow(unused_imports)]
pub use lifeboat_testkit::wait::eventually;
#[allow(unused_imports)]
pub use lifeboat_testkit::yaml;
#[allow(unused_imports)]
pub use lifeboat_testkit::{DEADLINE, LIFEBOAT_NS};

/// A simulated cluster with lifeboat's CRDs, its kubeconfig on disk, and a client. The
/// tests that use it read the simulator's store or inject its faults, so it is always the
/// simulator; backend-independent tests use [`TestCluster`] directly.
pub struct Cluster {
    pub sim: SimCluster,
    pub client: Client,
    pub kubeconfig: PathBuf,
    pub cluster: TestCluster,
}

impl std::ops::Deref for Cluster {
    type Target = TestCluster;

    fn deref(&self) -> &TestCluster {
        &self.cluster
    }
}

impl Cluster {
    pub async fn start(name: &str) -> Cluster {
        let cluster = TestCluster::start_on(name, Backend::Sim).await;
        Cluster {
            sim: cluster.sim().unwrap().clone(),
            client: cluster.client(),
            kubeconfig: cluster.kubeconfig().to_path_buf(),
            cluster,
        }
    }

    /// Creates an object through the API (lifeboat kinds and core kinds).
    pub async fn create(&self, obj: Value) -> Value {
        scenarios::create(&self.client, obj, "default").await
    }

    /// The run as stored right now (read from the simulator's store, no API request).
    pub fn run_now(&self, name: &str) -> Option<RecoveryRun> {
        self.sim
            .get_object(
                "recovery.elotl.co/v1alpha1",
                "recoveryruns",
                Some("default"),
                name,
            )
            .map(|v| serde_json::from_value(v).unwrap())
    }

    /// Waits until the run has finished and returns it.
    pub async fn wait_run_finished(&self, name: &str, ctl: &Controller) -> RecoveryRun {
        let api: Api<RecoveryRun> = Api::namespaced(self.client.clone(), "default");
        let cond = |r: Option<&RecoveryRun>| {
            r.and_then(|r| r.status.as_ref())
                .is_some_and(|s| s.phase.is_finished())
        };
        match tokio::time::timeout(DEADLINE, await_condition(api, name, cond)).await {
            Ok(Ok(Some(run))) => run,
            other => panic!(
                "run {name} did not finish within {DEADLINE:?} ({other:?}); run: {}\ncontroller log:\n{}",
                serde_json::to_string_pretty(&self.run_now(name)).unwrap(),
                ctl.log_text()
            ),
        }
    }
}

/// Polls `check` (a cheap, local read) until it returns `Some`, or fails after `DEADLINE`.
pub async fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A running `lifeboat controller` process.
pub type Controller = ControllerProcess;

/// Starts the real binary against `cluster` as replica `n` (no webhook, no leader
/// election) and waits until it listens.
pub async fn controller(cluster: &TestCluster, n: usize) -> Controller {
    replica(cluster, n, &["--no-webhook", "--no-leader-election"]).await
}

/// Starts the real binary against `cluster` as replica `n` (identity `replica-<n>`), with
/// `extra` flags (e.g. `--webhook-addr 127.0.0.1:0`, `--lease-duration 2s`); waits until
/// it has written its bound addresses (before leader election, so a standby starts too).
pub async fn replica(cluster: &TestCluster, n: usize, extra: &[&str]) -> Controller {
    let mut args = extra.to_vec();
    if !args.contains(&"--no-webhook") {
        args.extend(["--webhook-addr", "127.0.0.1:0"]);
    }
    ControllerProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_lifeboat")),
        cluster.kubeconfig(),
        cluster.dir(),
        &format!("replica-{n}"),
        &args,
    )
    .await
}

/// The value of the sample `name` (metric name with its labels exactly as exposed, e.g.
/// `lifeboat_runs_total{outcome="Completed"}`) in a Prometheus/OpenMetrics text, if present.
pub fn metric_value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(sample)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}
