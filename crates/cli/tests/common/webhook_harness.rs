//! Helpers for the webhook and Alertmanager tests: a simulator cluster with lifeboat's CRDs,
//! the real `lifeboat controller` process, Alertmanager-shaped payloads, and waiting on a
//! condition with a deadline.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::ListParams;
use lifeboat_api::{ReceivedAlert, RecoveryRun};
use lifeboat_testkit::{ControllerProcess, TestCluster};
use serde_json::{Value, json};

/// Namespace the controller runs in (and the webhook's default namespace).
pub const NS: &str = "lifeboat-system";
/// Bearer token the tests configure.
pub const TOKEN: &str = "s3cret-token-for-tests";

/// A cluster with lifeboat's CRDs and some namespaces (the backend
/// `LIFEBOAT_TEST_CLUSTER` chooses), plus a client for it.
pub struct Env {
    pub cluster: TestCluster,
    pub kubeconfig: PathBuf,
    pub client: kube::Client,
}

impl Env {
    pub async fn start(namespaces: &[&str]) -> Env {
        let cluster = TestCluster::start("webhook").await;
        let mut all = vec![NS];
        all.extend(namespaces);
        cluster.create_namespaces(&all).await;
        Env {
            kubeconfig: cluster.kubeconfig().to_path_buf(),
            client: cluster.client(),
            cluster,
        }
    }

    /// The simulator, for tests that inject its faults.
    pub fn sim(&self) -> &lifeboat_sim::SimCluster {
        self.cluster
            .sim()
            .expect("this test injects the simulator's faults: it needs LIFEBOAT_TEST_CLUSTER=sim")
    }

    /// A directory that lives as long as the cluster.
    pub fn dir(&self) -> &Path {
        self.cluster.dir()
    }

    pub fn alerts_api(&self, ns: &str) -> Api<ReceivedAlert> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub async fn alerts(&self, ns: &str) -> Vec<ReceivedAlert> {
        self.alerts_api(ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    pub async fn runs(&self, ns: &str) -> Vec<RecoveryRun> {
        Api::<RecoveryRun>::namespaced(self.client.clone(), ns)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// Applies a manifest (JSON): straight into the simulator's store, or through the API.
    pub async fn apply(&self, obj: Value) {
        self.cluster.apply(obj).await;
    }
}

/// Flags of one `lifeboat controller` process beyond the defaults of [`Controller::start`].
#[derive(Clone, Default)]
pub struct Opts {
    pub token: Option<String>,
    pub tenants: Vec<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub client_ca: Option<PathBuf>,
    pub max_body_bytes: Option<usize>,
}

impl Opts {
    pub fn with_token() -> Opts {
        Opts {
            token: Some(TOKEN.to_string()),
            ..Opts::default()
        }
    }
}

/// A running `lifeboat controller` serving the webhook (no leader election); killed when
/// dropped.
pub struct Controller(pub ControllerProcess);

impl std::ops::Deref for Controller {
    type Target = ControllerProcess;

    fn deref(&self) -> &ControllerProcess {
        &self.0
    }
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

impl Controller {
    /// Starts the real binary against `env`'s cluster, on loopback ports chosen by the OS,
    /// and waits until it has written its bound addresses.
    pub async fn start(env: &Env, opts: &Opts) -> Controller {
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let dir = env.dir();
        let mut args: Vec<String> = ["--webhook-addr", "127.0.0.1:0", "--no-leader-election"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(token) = &opts.token {
            let f = dir.join(format!("token-{n}"));
            std::fs::write(&f, format!("{token}\n")).unwrap();
            args.extend(["--webhook-token-file".into(), f.display().to_string()]);
        }
        for t in &opts.tenants {
            args.extend(["--tenant-namespace".into(), t.clone()]);
        }
        if let Some((cert, key)) = &opts.tls {
            args.extend(["--tls-cert".into(), cert.display().to_string()]);
            args.extend(["--tls-key".into(), key.display().to_string()]);
        }
        if let Some(ca) = &opts.client_ca {
            args.extend(["--client-ca".into(), ca.display().to_string()]);
        }
        if let Some(max) = opts.max_body_bytes {
            args.extend(["--max-body-bytes".into(), max.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Controller(
            ControllerProcess::start(
                Path::new(env!("CARGO_BIN_EXE_lifeboat")),
                &env.kubeconfig,
                dir,
                &format!("controller-{n}"),
                &args,
            )
            .await,
        )
    }

    /// URL of `path` on the webhook receiver.
    pub fn url(&self, path: &str) -> String {
        self.0.webhook_url(path)
    }

    /// The webhook's address.
    pub fn webhook_addr(&self) -> SocketAddr {
        self.0.webhook.expect("the controller serves the webhook")
    }
}

/// Polls `check` until it returns `Some`, failing with `what` (and the last state described by
/// `check`'s `Err`) after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {timeout:?} waiting for {what}; last state: {last}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One alert as Alertmanager sends it.
pub fn am_alert(
    status: &str,
    labels: &[(&str, &str)],
    starts_at: &str,
    fingerprint: Option<&str>,
) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let mut a = json!({
        "status": status,
        "labels": labels,
        "annotations": {"summary": "test alert", "description": "a \"quoted\" value\nwith a newline"},
        "startsAt": starts_at,
        "endsAt": if status == "resolved" { "2024-05-01T11:00:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
    });
    if let Some(fp) = fingerprint {
        a["fingerprint"] = json!(fp);
    }
    a
}

/// A version-4 notification carrying `alerts`.
pub fn am_payload(receiver: &str, alerts: Vec<Value>) -> Value {
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    json!({
        "version": "4",
        "receiver": receiver,
        "status": status,
        "groupKey": "{}:{alertname=\"DatabaseDown\"}",
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": "DatabaseDown"},
        "commonLabels": {"alertname": "DatabaseDown"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    })
}

/// POSTs `body` (JSON) with the bearer token; returns status and body as JSON (or text).
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut req = client.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// A ConfigMap `name` in `ns` and a RecoveryPlan `name` matching `alert_labels` whose one step
/// reads `data.primary` from it (quick to complete, no Job).
pub async fn apply_plan(env: &Env, ns: &str, name: &str, alert_labels: &[(&str, &str)]) {
    env.apply(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"primary": "db-0"},
    }))
    .await;
    let labels: BTreeMap<&str, &str> = alert_labels.iter().copied().collect();
    env.apply(json!({
        "apiVersion": "recovery.elotl.co/v1alpha1",
        "kind": "RecoveryPlan",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "alertLabels": labels,
            "steps": [{
                "type": "readField",
                "title": "Read the primary",
                "readField": {
                    "apiVersion": "v1",
                    "resource": "configmaps",
                    "namespace": ns,
                    "name": name,
                    "fieldPath": "data.primary",
                    "outputKey": "primary",
                },
            }],
        },
    }))
    .await;
}

/// RecoveryRuns of `ns` started for the ReceivedAlert `alert`.
pub async fn runs_for(env: &Env, ns: &str, alert: &str) -> Vec<RecoveryRun> {
    Api::<RecoveryRun>::namespaced(env.client.clone(), ns)
        .list(&ListParams::default().labels(&format!("{}={alert}", lifeboat_api::LABEL_ALERT)))
        .await
        .unwrap()
        .items
}

/// The status of every plan and alert of `ns`, for failure messages.
pub async fn describe(env: &Env, ns: &str) -> String {
    let plans = Api::<lifeboat_api::RecoveryPlan>::namespaced(env.client.clone(), ns)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut out = String::new();
    for p in plans {
        out.push_str(&format!(
            "\nplan {}: {}",
            p.metadata.name.unwrap_or_default(),
            serde_json::to_string(&p.status).unwrap_or_default()
        ));
    }
    for a in env.alerts(ns).await {
        out.push_str(&format!(
            "\nalert {}: {}",
            a.metadata.name.unwrap_or_default(),
            serde_json::to_string(&a.status).unwrap_or_default()
        ));
    }
    out
}
