//! Shared helpers of the operator's API-level tests: simulated clusters with lifeboat's CRDs,
//! the controller running in-process, and waits on conditions with deadlines.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::await_condition;
use kube::{Client, Config};
use lifeboat_api::{
    CLUSTER_SECRET_TYPE, LABEL_CLUSTER_SECRET, ReceivedAlert, RecoveryPlan, RecoveryRun,
};
use lifeboat_operator::{ControllerConfig, OperatorError, run_controller};
use lifeboat_sim::SimCluster;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// lifeboat's own namespace in the tests.
pub const LIFEBOAT_NS: &str = "lifeboat-system";
/// How long any wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The seed examples (verbatim copies of /work/shared/seed-examples).
pub const SEED_PLAN: &str = include_str!("../fixtures/recovery-plan-003.yaml");
pub const SEED_ALERT: &str = include_str!("../fixtures/received-alert-003.yaml");
pub const SEED_RUN: &str = include_str!("../fixtures/recovery-run-003.yaml");

/// A client of `sim` (cluster-admin).
pub async fn client_for(sim: &SimCluster) -> Client {
    let kc = Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

/// A simulated cluster with lifeboat's CRDs and namespaces.
pub async fn start_cluster(name: &str) -> (SimCluster, Client) {
    let sim = SimCluster::start(name).await.unwrap();
    for crd in lifeboat_api::crds::all() {
        sim.apply_object(serde_json::to_value(&crd).unwrap())
            .unwrap();
    }
    for ns in [LIFEBOAT_NS, "default", "team-a"] {
        let _ = sim.apply_object(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns}}));
    }
    let client = client_for(&sim).await;
    (sim, client)
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
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_controller(client, cfg, shutdown.clone()));
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

/// Parses a YAML document into JSON.
pub fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

/// Applies a YAML/JSON object through the API (create), in `namespace` unless it names one.
pub async fn create(client: &Client, obj: Value, namespace: &str) -> Value {
    use kube::api::DynamicObject;
    use kube::discovery::ApiResource;
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
        .unwrap_or(namespace)
        .to_string();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let dynobj: DynamicObject = serde_json::from_value(obj).unwrap();
    let created = api.create(&PostParams::default(), &dynobj).await.unwrap();
    serde_json::to_value(created).unwrap()
}

/// The pod of the seed: `my-pod` in `default` with two containers.
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

/// Registers `cluster` (its kubeconfig) with lifeboat on `home` under `name`.
pub async fn register_cluster(home: &Client, name: &str, cluster: &SimCluster) {
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("cluster-{name}"), "namespace": LIFEBOAT_NS,
            "labels": {LABEL_CLUSTER_SECRET: CLUSTER_SECRET_TYPE}},
        "stringData": {"name": name, "kubeconfig": cluster.kubeconfig_yaml()}
    }))
    .unwrap();
    Api::<Secret>::namespaced(home.clone(), LIFEBOAT_NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// Waits (until [`DEADLINE`]) for `cond` to hold on object `name`; watch errors (injected
/// faults) restart the watch. `None` on timeout.
pub async fn await_object<K>(
    api: Api<K>,
    name: &str,
    cond: impl Fn(Option<&K>) -> bool + Clone,
) -> Option<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, await_condition(api.clone(), name, cond.clone())).await {
            Ok(Ok(Some(obj))) => return Some(obj),
            Ok(Ok(None)) => return None,
            Ok(Err(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// Waits until the run has finished (Completed or Failed) and returns it.
pub async fn wait_run_finished(client: &Client, namespace: &str, name: &str) -> RecoveryRun {
    let api: Api<RecoveryRun> = Api::namespaced(client.clone(), namespace);
    let cond = |r: Option<&RecoveryRun>| {
        r.and_then(|r| r.status.as_ref())
            .is_some_and(|s| s.phase.is_finished())
    };
    match await_object(api.clone(), name, cond).await {
        Some(run) => run,
        other => {
            let current = api.get_opt(name).await.ok().flatten();
            panic!(
                "run {namespace}/{name} did not finish within {DEADLINE:?} ({other:?}); current state: {}",
                serde_json::to_string_pretty(&current).unwrap()
            )
        }
    }
}

/// Waits until the alert has been processed and returns it.
pub async fn wait_alert_processed(client: &Client, namespace: &str, name: &str) -> ReceivedAlert {
    let api: Api<ReceivedAlert> = Api::namespaced(client.clone(), namespace);
    let cond = |a: Option<&ReceivedAlert>| {
        a.and_then(|a| a.status.as_ref())
            .is_some_and(|s| s.processed)
    };
    match await_object(api.clone(), name, cond).await {
        Some(alert) => alert,
        other => {
            let current = api.get_opt(name).await.ok().flatten();
            panic!(
                "alert {namespace}/{name} not processed within {DEADLINE:?} ({other:?}); current state: {}",
                serde_json::to_string_pretty(&current).unwrap()
            )
        }
    }
}

/// Waits until the plan's status has a validation result and returns it.
pub async fn wait_plan_validated(client: &Client, namespace: &str, name: &str) -> RecoveryPlan {
    let api: Api<RecoveryPlan> = Api::namespaced(client.clone(), namespace);
    let cond = |p: Option<&RecoveryPlan>| {
        p.and_then(|p| p.status.as_ref())
            .is_some_and(|s| s.validation.is_some())
    };
    match await_object(api.clone(), name, cond).await {
        Some(plan) => plan,
        other => panic!("plan {namespace}/{name} not validated within {DEADLINE:?} ({other:?})"),
    }
}
