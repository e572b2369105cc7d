//! The floor of a failover: the minimum API requests a failover needs
//! ([`api_counts::failover_minimum`]), sent one after the other by a plain client with warm
//! connections against the same clusters, in the same process run. lifeboat's failover
//! median divided by the floor's median is how close lifeboat comes to the limit the API
//! servers set.
//!
//! The sequence is the order lifeboat needs: the alert stored and marked processed, the run
//! created, its status written before each step that acts and once at the end (4 writes
//! for the 3 patches; the read needs none of its own), and the steps' own requests between
//! them. Nothing else (no watch, no
//! Event). It runs before the controller starts, so the controller never acts on the
//! floor's objects: when it starts, it finds them processed and finished.
//!
//! When the CPUs are split ([`crate::placement`]), the client plays the controller's part
//! and runs on the controller's CPUs: a thread of its own there, with its own runtime and
//! connections.

use std::time::{Duration, Instant};

use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use lifeboat_api::{ReceivedAlert, RecoveryRun};
use serde::Serialize;
use serde_json::json;

use crate::stats::Summary;
use crate::world::{self, LIFEBOAT_NS, World};

#[derive(Debug, Serialize)]
pub struct FloorResult {
    /// First request sent → last answer received, per repetition.
    pub wall: Option<Summary>,
    /// Requests per repetition (the minimum by construction).
    pub requests_per_run: u32,
    pub failures: Vec<String>,
}

/// The clients the floor's requests are sent with.
struct Clients {
    mgmt: Client,
    db: Client,
    proxy: Client,
}

/// Where the floor's requests are sent from: this runtime, or a thread on the controller's
/// CPUs that times each sequence and answers with its duration.
enum Sender {
    Here(Box<Clients>),
    Pinned(tokio::sync::mpsc::Sender<(usize, Reply)>),
}

type Reply = tokio::sync::oneshot::Sender<Result<Duration, String>>;

impl Sender {
    async fn start(world: &World) -> Result<Sender, String> {
        let Some(placement) = crate::placement::Placement::current() else {
            return Ok(Sender::Here(Box::new(Clients {
                mgmt: world.mgmt.client.clone(),
                db: world.db.client.clone(),
                proxy: world.proxy.client.clone(),
            })));
        };
        let kubeconfigs: Vec<(String, String)> = world
            .clusters()
            .iter()
            .map(|c| (c.name().to_string(), c.admin_kubeconfig_yaml().to_string()))
            .collect();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Reply)>(1);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        std::thread::Builder::new()
            .name("floor-client".into())
            .spawn(move || {
                let started = placement.enter_controller_cpus().and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| format!("cannot start the floor's runtime: {e}"))
                });
                let rt = match started {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let mut clients = Vec::new();
                    for (name, yaml) in &kubeconfigs {
                        match world::client_from(name, yaml).await {
                            Ok(c) => clients.push(c),
                            Err(e) => {
                                let _ = ready_tx.send(Err(e.to_string()));
                                return;
                            }
                        }
                    }
                    let [mgmt, db, proxy]: [Client; 3] = match clients.try_into() {
                        Ok(c) => c,
                        Err(_) => {
                            let _ = ready_tx.send(Err("expected three clusters".into()));
                            return;
                        }
                    };
                    let clients = Clients { mgmt, db, proxy };
                    let _ = ready_tx.send(Ok(()));
                    while let Some((i, reply)) = rx.recv().await {
                        let t0 = Instant::now();
                        let outcome = once(&clients, i).await;
                        let _ =
                            reply.send(outcome.map(|()| t0.elapsed()).map_err(|e| e.to_string()));
                    }
                });
            })
            .map_err(|e| format!("cannot start the floor's thread: {e}"))?;
        ready_rx
            .await
            .map_err(|_| "the floor's thread stopped".to_string())??;
        Ok(Sender::Pinned(tx))
    }

    /// Sends sequence `i`; returns how long it took.
    async fn once(&self, i: usize) -> Result<Duration, String> {
        match self {
            Sender::Here(clients) => {
                let t0 = Instant::now();
                once(clients, i).await.map_err(|e| e.to_string())?;
                Ok(t0.elapsed())
            }
            Sender::Pinned(tx) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                tx.send((i, reply))
                    .await
                    .map_err(|_| "the floor's thread stopped".to_string())?;
                answer
                    .await
                    .map_err(|_| "the floor's thread stopped".to_string())?
            }
        }
    }
}

/// Runs the floor sequence `warmup + n` times, resetting the clusters before each.
pub async fn run(world: &World, warmup: usize, n: usize) -> FloorResult {
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    let sender = match Sender::start(world).await {
        Ok(s) => s,
        Err(e) => {
            return FloorResult {
                wall: None,
                requests_per_run: crate::api_counts::failover_minimum_total(),
                failures: vec![format!("floor: {e}")],
            };
        }
    };
    for i in 0..warmup + n {
        if let Err(e) = world.reset().await {
            failures.push(format!("floor {i}: cannot reset the clusters: {e}"));
            break;
        }
        match sender.once(i).await {
            Ok(took) => {
                if let Err(e) = world.check_failed_over().await {
                    failures.push(format!("floor {i}: the requests were sent but {e}"));
                }
                if i >= warmup {
                    samples.push(took);
                }
            }
            Err(e) => failures.push(format!("floor {i}: {e}")),
        }
    }
    FloorResult {
        wall: Summary::of(&samples),
        requests_per_run: crate::api_counts::failover_minimum_total(),
        failures,
    }
}

/// One failover's minimum requests, in order.
async fn once(clients: &Clients, i: usize) -> Result<(), kube::Error> {
    let mgmt = clients.mgmt.clone();
    let alerts: Api<ReceivedAlert> = Api::namespaced(mgmt.clone(), LIFEBOAT_NS);
    let runs: Api<RecoveryRun> = Api::namespaced(mgmt, LIFEBOAT_NS);
    let pg: Api<DynamicObject> =
        Api::namespaced_with(clients.db.clone(), world::DB_NS, &world::pg_resource());
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(clients.proxy.clone(), world::PROXY_NS);
    let pp = PostParams::default();
    let merge = PatchParams::default();
    let name = format!("floor-{i}");

    // 1-2: the alert, then "processed" on it.
    let alert: ReceivedAlert = serde_json::from_value(json!({
        "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
        "metadata": {"name": name, "namespace": LIFEBOAT_NS},
        "spec": {"labels": {"alertname": "FloorOnly", "bench_id": name}}
    }))
    .map_err(kube::Error::SerdeError)?;
    alerts.create(&pp, &alert).await?;
    let processed = json!({"status": {"processed": true, "runs": [name]}});
    alerts
        .patch_status(&name, &merge, &Patch::Merge(&processed))
        .await?;

    // 3: the run.
    let run: RecoveryRun = serde_json::from_value(json!({
        "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
        "metadata": {"name": name, "namespace": LIFEBOAT_NS},
        "spec": {"alertSpec": {"name": name}, "steps": [{"type": "readField",
            "readField": {"apiVersion": "v1", "resource": "configmaps", "name": "x",
            "fieldPath": "data.x", "outputKey": "x"}}]}
    }))
    .map_err(kube::Error::SerdeError)?;
    let mut run = runs.create(&pp, &run).await?;

    // 4..11: a status write before each step that acts, the step, and the outcome.
    let host_path = ["status", "host"];
    let mut host = String::new();
    for step in 0..=4 {
        if step != 2 {
            let phase = if step == 4 { "Completed" } else { "Running" };
            run.status = Some(
                serde_json::from_value(json!({"phase": phase, "currentStep": step}))
                    .map_err(kube::Error::SerdeError)?,
            );
            run = runs.replace_status(&name, &pp, &run).await?;
        }
        match step {
            0 | 1 => {
                let (cluster, standby) = if step == 0 {
                    ("cluster1", true)
                } else {
                    ("cluster2", false)
                };
                let body = json!({"spec": {"standby": {"enabled": standby}}});
                pg.patch(cluster, &merge, &Patch::Merge(&body)).await?;
            }
            2 => {
                let obj = pg.get("cluster2").await?;
                host = host_path
                    .iter()
                    .try_fold(&obj.data, |v, k| v.get(k))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
            }
            3 => {
                let body = json!({"data": {"haproxy.cfg": world::haproxy_cfg(&host)}});
                cms.patch(world::HAPROXY_CM, &merge, &Patch::Merge(&body))
                    .await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// lifeboat's failover median ÷ the floor's median.
pub fn ratio(lifeboat: Option<Summary>, floor: Option<Summary>) -> Option<f64> {
    let (l, f) = (lifeboat?, floor?);
    (f.median_ms > 0.0).then(|| l.median_ms / f.median_ms)
}
