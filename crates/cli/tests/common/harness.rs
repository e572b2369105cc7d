//! A cluster (on the backend `LIFEBOAT_TEST_CLUSTER` chooses) holding the seed's pod, with
//! the real `lifeboat controller` running against it, and the `lifeboat` CLI pointed at it.

use std::process::Output;

use kube::Api;
use lifeboat_api::{RecoveryRun, RecoveryRunStatus, RunPhase};
use lifeboat_operator::naming;
use lifeboat_testkit::scenarios::{self, create, wait_run_finished};
use lifeboat_testkit::wait::{wait_for_state, wait_plan_validated};
use lifeboat_testkit::{ControllerProcess, TestCluster};
use serde_json::{Value, json};
use tokio::process::Command;

/// A cluster holding the seed's pod, with the real controller running against it.
pub struct Harness {
    pub cluster: TestCluster,
    pub client: kube::Client,
    pub ctl: ControllerProcess,
}

impl Harness {
    pub async fn start() -> Harness {
        let cluster = TestCluster::start("local").await;
        cluster.apply(scenarios::seed_pod()).await;
        let client = cluster.client();
        let ctl = super::controller(&cluster, 0).await;
        Harness {
            cluster,
            client,
            ctl,
        }
    }

    /// `lifeboat ARGS…` against the cluster's admin kubeconfig.
    pub async fn lifeboat(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(args)
            .env("KUBECONFIG", self.cluster.kubeconfig())
            .output()
            .await
            .unwrap()
    }

    /// Creates `plan` (made with `scenarios::plan`, matching `{"plan": NAME}`) and an alert
    /// for it; returns the run's name.
    pub async fn start_run(&self, plan: Value) -> String {
        let name = plan["metadata"]["name"].as_str().unwrap().to_string();
        create(&self.client, plan, "default").await;
        // Alerts match the plans the controller knows: wait until it has seen this one.
        wait_plan_validated(&self.client, "default", &name, &|| self.ctl.diag()).await;
        let alert = format!("{name}-alert");
        create(
            &self.client,
            scenarios::alert(&alert, json!({"plan": name})),
            "default",
        )
        .await;
        naming::run_name(&name, &alert)
    }

    /// Waits until `run` is in `phase`.
    pub async fn wait_for_phase(&self, run: &str, phase: RunPhase) {
        let api: Api<RecoveryRun> = Api::namespaced(self.client.clone(), "default");
        wait_for_state(
            api,
            run,
            &format!("run not {}", phase.as_str()),
            |r: Option<&RecoveryRun>| {
                r.and_then(|r| r.status.as_ref())
                    .is_some_and(|s| s.phase == phase)
            },
            &|| self.ctl.diag(),
        )
        .await;
    }

    /// The status of `run` once it has finished.
    pub async fn finished(&self, run: &str) -> RecoveryRunStatus {
        wait_run_finished(&self.client, "default", run, &|| self.ctl.diag())
            .await
            .status
            .unwrap()
    }

    /// The image of `my-pod`'s sidecar (what the seed's patch changes).
    pub async fn sidecar_image(&self) -> String {
        let pod = self
            .cluster
            .get("v1", "pods", Some("default"), "my-pod")
            .await
            .unwrap();
        pod["spec"]["containers"][1]["image"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn stop(self) {
        self.ctl.assert_no_panic();
        self.ctl.terminate().await;
    }
}

/// The plan `name` (matching alerts labelled `plan: NAME`) with `steps`.
pub fn plan(name: &str, steps: Vec<Value>) -> Value {
    scenarios::plan(name, json!({"plan": name}), Value::Array(steps))
}

/// The seed's read of `my-pod`'s image and its patch of the sidecar.
pub fn pod_steps() -> Vec<Value> {
    scenarios::pod_steps().as_array().unwrap().clone()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}
