//! Helpers of the end-to-end tests: a simulated cluster in the test process and the real
//! `lifeboat controller` binary against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use kube::runtime::wait::await_condition;
use lifeboat_api::RecoveryRun;
use lifeboat_sim::SimCluster;
use serde_json::{Value, json};

/// Setup and scenarios shared with the operator's in-process tests.
pub mod scenarios;
/// The workload of the crash-loop and API-fault tests.
pub mod workload;

pub use scenarios::{DEADLINE, LIFEBOAT_NS};

pub const SEED_PLAN: &str = include_str!("../fixtures/recovery-plan-003.yaml");
pub const SEED_ALERT: &str = include_str!("../fixtures/received-alert-003.yaml");
pub const SEED_RUN: &str = include_str!("../fixtures/recovery-run-003.yaml");

/// A simulated cluster with lifeboat's CRDs, its kubeconfig on disk, and a client.
pub struct Cluster {
    pub sim: SimCluster,
    pub client: Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    pub async fn start(name: &str) -> Cluster {
        let sim = scenarios::sim_cluster(name).await;
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let client = scenarios::client_of(&sim).await;
        Cluster {
            sim,
            client,
            dir,
            kubeconfig,
        }
    }

    /// Creates an object through the API (lifeboat kinds and core kinds).
    pub async fn create(&self, obj: Value) -> Value {
        let api_version = obj["apiVersion"].as_str().unwrap().to_string();
        let kind = obj["kind"].as_str().unwrap().to_string();
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        let plural = match kind.as_str() {
            "ReceivedAlert" => "receivedalerts".to_string(),
            "RecoveryPlan" => "recoveryplans".to_string(),
            "RecoveryRun" => "recoveryruns".to_string(),
            k => format!("{}s", k.to_ascii_lowercase()),
        };
        let ar = ApiResource {
            group,
            version,
            api_version,
            kind,
            plural,
        };
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &ns, &ar);
        let obj: DynamicObject = serde_json::from_value(obj).unwrap();
        serde_json::to_value(api.create(&PostParams::default(), &obj).await.unwrap()).unwrap()
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

/// The seed's pod: `my-pod` with two containers.
pub fn seed_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "my-pod", "namespace": "default"},
        "spec": {"containers": [
            {"name": "app", "image": "example-image:v1"},
            {"name": "sidecar", "image": "sidecar:old"}
        ]}
    })
}

pub fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
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
pub struct Controller {
    pub child: tokio::process::Child,
    pub log: PathBuf,
}

impl Controller {
    /// Starts the real binary against `cluster` (no webhook, no leader election) and waits
    /// until it listens.
    pub async fn start(cluster: &Cluster, n: usize) -> Controller {
        let dir = cluster.dir.path();
        let addr_file = dir.join(format!("addr-{n}.json"));
        let log = dir.join(format!("controller-{n}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args([
                "controller",
                "--namespace",
                LIFEBOAT_NS,
                "--no-webhook",
                "--health-addr",
                "127.0.0.1:0",
                "--no-leader-election",
                "--addr-file",
            ])
            .arg(&addr_file)
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("LIFEBOAT_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        while !std::fs::read_to_string(&addr_file).is_ok_and(|t| t.contains("health")) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "lifeboat controller exited ({status}); log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "controller did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Controller { child, log }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    /// SIGTERM, and wait for a clean exit.
    pub async fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("controller did not stop after SIGTERM")
            .unwrap();
        assert!(
            status.success(),
            "controller exited with {status}; log:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log, for failure messages of shared scenarios.
    pub fn diag(&self) -> String {
        format!("controller log:\n{}", self.log_text())
    }

    /// Fails if the process has panicked (its log holds stdout and stderr).
    pub fn assert_no_panic(&self) {
        let log = self.log_text();
        assert!(
            !log.contains("panicked"),
            "the controller panicked; log:\n{log}"
        );
    }
}

/// A `lifeboat controller` started with a webhook receiver and chosen flags, and the
/// addresses it bound (read from its `--addr-file`).
pub struct Replica {
    pub ctl: Controller,
    /// `--identity` of the replica (its name in the Lease).
    pub identity: String,
    pub webhook: Option<std::net::SocketAddr>,
    pub health: std::net::SocketAddr,
}

impl Replica {
    /// Starts the real binary against `cluster` as replica `n` (identity `replica-<n>`),
    /// webhook and health on loopback ports chosen by the OS, plus `extra` flags (e.g.
    /// `--lease-duration 2`, `--no-leader-election`, `--no-webhook`); waits until it has
    /// written its bound addresses (before leader election, so a standby starts too).
    pub async fn start(cluster: &Cluster, n: usize, extra: &[&str]) -> Replica {
        let identity = format!("replica-{n}");
        let dir = cluster.dir.path();
        let addr_file = dir.join(format!("replica-addr-{n}.json"));
        let log = dir.join(format!("replica-{n}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args([
                "controller",
                "--namespace",
                LIFEBOAT_NS,
                "--webhook-addr",
                "127.0.0.1:0",
                "--health-addr",
                "127.0.0.1:0",
                "--identity",
                &identity,
                "--addr-file",
            ])
            .arg(&addr_file)
            .args(extra)
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("LIFEBOAT_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        let addrs: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && v.get("health").is_some()
            {
                break v;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{identity} exited ({status}) before listening; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{identity} did not write {} in time",
                addr_file.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let addr = |key: &str| addrs[key].as_str().map(|a| a.parse().unwrap());
        Replica {
            webhook: addr("webhook"),
            health: addr("health").unwrap(),
            identity,
            ctl: Controller { child, log },
        }
    }

    /// URL of `path` on the webhook receiver.
    pub fn webhook_url(&self, path: &str) -> String {
        let addr = self.webhook.expect("the replica serves no webhook");
        format!("http://{addr}{path}")
    }

    /// GET `path` on the health server: status and body.
    pub async fn health_get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.health))
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", self.identity));
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.health_get("/metrics").await;
        assert_eq!(status, 200, "/metrics of {}: {body}", self.identity);
        body
    }

    pub fn log_text(&self) -> String {
        self.ctl.log_text()
    }
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

/// The holder of lifeboat's leader Lease as stored right now (store read), `None` when the
/// Lease does not exist or has no holder.
pub fn lease_holder(cluster: &Cluster, lease: &str) -> Option<String> {
    cluster
        .sim
        .get_object("coordination.k8s.io/v1", "leases", Some(LIFEBOAT_NS), lease)?
        .pointer("/spec/holderIdentity")?
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}
