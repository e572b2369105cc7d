//! The alert storm: `plans` plans in one namespace, then `alerts` distinct alerts (one per
//! plan) in webhooks of `batch`, then the very same webhooks again. The first send must
//! store, process and run every alert; the re-send must create nothing.
//!
//! Before the storm, the server's own write throughput is measured in the same run
//! ([`server_writes`]): the ceiling any client of that server works under.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use lifeboat_api::RecoveryPlan;
use serde::Serialize;
use serde_json::{Value, json};

use crate::alerts::{self, Alert};
use crate::api_counts::{self, PerRun};
use crate::identity::Actor;
use crate::observe::Observer;
use crate::world::{self, STORM_NS, STORM_TARGET, World};

/// Webhooks in flight at once (Alertmanager notifies several groups in parallel).
pub const SEND_CONCURRENCY: usize = 4;
/// Writes in flight while measuring the server's own write throughput.
pub const WRITE_CONCURRENCY: usize = 16;
/// ConfigMaps created to measure it.
pub const WRITES: usize = 2_000;

#[derive(Debug, Clone, Copy)]
pub struct StormConfig {
    pub plans: usize,
    pub alerts: usize,
    pub batch: usize,
    /// How long everything may take before the storm counts as failed.
    pub timeout: Duration,
}

#[derive(Debug, Default, Serialize)]
pub struct StormResult {
    pub plans: usize,
    pub alerts: usize,
    pub batch: usize,
    /// Seconds until every plan carried a validation status.
    pub plans_validated_s: Option<f64>,
    /// The server's own write throughput: ConfigMaps created per second by a plain client
    /// with [`WRITE_CONCURRENCY`] in flight, just before the storm.
    pub server_writes_per_s: Option<f64>,
    /// First POST → last 200 of the first send.
    pub stored_s: Option<f64>,
    pub stored_per_s: Option<f64>,
    /// First POST → every alert seen processed.
    pub processed_s: Option<f64>,
    pub processed_per_s: Option<f64>,
    /// First POST → every run seen finished.
    pub runs_finished_s: Option<f64>,
    pub runs_per_s: Option<f64>,
    /// The re-send: first POST → last 200, and what it created.
    pub resend_s: Option<f64>,
    pub resend_per_s: Option<f64>,
    pub resend_alerts_created: usize,
    pub resend_runs_created: usize,
    pub alerts_present: usize,
    pub runs_present: usize,
    pub runs_completed: usize,
    /// lifeboat's requests for the first send, per alert (watches excluded), from the first
    /// POST until they stopped: the webhook's creates, the runs, Events, plan status.
    pub requests: Option<PerRun>,
    /// The server's own writes/s ÷ lifeboat's writes per alert: the most alerts per second
    /// this server could take if the controller cost nothing.
    pub ceiling_per_s: Option<f64>,
    /// How the cores split during the first send.
    pub cpu: Option<StormCpu>,
    /// The controller's Events for the first send by outcome (Published, Failed, Dropped),
    /// from its `lifeboat_events_total`.
    pub events: BTreeMap<String, u64>,
    pub failures: Vec<String>,
}

/// `lifeboat_events_total` by outcome, from the controller's metrics.
async fn controller_events(
    http: &reqwest::Client,
    url: &str,
) -> Result<BTreeMap<String, u64>, String> {
    let text = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    Ok(events_by_outcome(&text))
}

/// The `lifeboat_events_total{outcome="…"} N` samples of a Prometheus text exposition.
pub fn events_by_outcome(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("lifeboat_events_total{outcome=\"")?;
            let (outcome, rest) = rest.split_once("\"}")?;
            let n: f64 = rest.trim().parse().ok()?;
            // Counters are whole numbers, exposed as integers or floats.
            Some((outcome.to_string(), n as u64))
        })
        .collect()
}

/// CPU time spent from the first POST of the first send until lifeboat's requests had
/// stopped for a second (the window ends with that quiet second).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StormCpu {
    /// Wall-clock seconds of that window.
    pub wall_s: f64,
    /// The controller process, seconds.
    pub controller_s: f64,
    /// The API servers, seconds: simulated clusters are served from the harness's own
    /// process, so there this includes the harness (sending the webhooks, watching).
    pub servers_s: f64,
    pub servers_include_harness: bool,
}

/// CPU used so far by the controller and by the servers (see [`StormCpu::servers_s`]).
struct CpuSample {
    at: Instant,
    controller: Duration,
    servers: Duration,
    /// Simulated clusters: `servers` is this process's (the harness's) CPU.
    servers_include_harness: bool,
}

impl CpuSample {
    fn take(world: &World, controller_pid: u32) -> Option<CpuSample> {
        let pids: Vec<Option<u32>> = world.clusters().iter().map(|c| c.server_pid()).collect();
        let servers_include_harness = pids.iter().all(Option::is_none);
        let servers = if servers_include_harness {
            crate::cpu::of_self()?
        } else {
            let mut sum = Duration::ZERO;
            for pid in pids {
                sum += crate::cpu::of_process(pid?)?;
            }
            sum
        };
        Some(CpuSample {
            at: Instant::now(),
            controller: crate::cpu::of_process(controller_pid)?,
            servers,
            servers_include_harness,
        })
    }

    fn since(&self, start: &CpuSample) -> StormCpu {
        StormCpu {
            wall_s: self.at.duration_since(start.at).as_secs_f64(),
            controller_s: self
                .controller
                .saturating_sub(start.controller)
                .as_secs_f64(),
            servers_s: self.servers.saturating_sub(start.servers).as_secs_f64(),
            servers_include_harness: self.servers_include_harness,
        }
    }
}

fn plan(i: usize) -> Value {
    json!({
        "apiVersion": "recovery.elotl.co/v1alpha1",
        "kind": "RecoveryPlan",
        "metadata": {"name": format!("storm-{i:05}"), "namespace": STORM_NS},
        "spec": {
            "alertLabels": {"alertname": "StormAlert", "shard": i.to_string()},
            "steps": [{
                "type": "readField",
                "title": "Read the target",
                "readField": {
                    "apiVersion": "v1",
                    "resource": "configmaps",
                    "namespace": STORM_NS,
                    "name": STORM_TARGET,
                    "fieldPath": "data.value",
                    "outputKey": "value"
                }
            }]
        }
    })
}

/// Loads the plans straight into the store and waits until the plan controller has
/// validated every one (so its status writes do not overlap the storm).
async fn load_plans(world: &World, n: usize, timeout: Duration) -> Result<Duration, String> {
    // Read straight from the simulator's store: 10 000 GETs would load the server measured.
    let Some(sim) = world.mgmt.sim() else {
        return load_plans_through_api(world, n, timeout).await;
    };
    let t0 = Instant::now();
    for i in 0..n {
        world.mgmt.put(plan(i)).await.map_err(|e| e.to_string())?;
    }
    let deadline = t0 + timeout;
    let mut next = 0;
    while next < n {
        let name = format!("storm-{next:05}");
        let validated = sim
            .get_object(
                "recovery.elotl.co/v1alpha1",
                "recoveryplans",
                Some(STORM_NS),
                &name,
            )
            .is_some_and(|p| !p["status"]["validation"].is_null());
        if validated {
            next += 1;
            continue;
        }
        if Instant::now() > deadline {
            let validated = (0..n)
                .filter(|i| {
                    sim.get_object(
                        "recovery.elotl.co/v1alpha1",
                        "recoveryplans",
                        Some(STORM_NS),
                        &format!("storm-{i:05}"),
                    )
                    .is_some_and(|p| !p["status"]["validation"].is_null())
                })
                .count();
            return Err(format!(
                "{validated} of {n} plans validated within {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(t0.elapsed())
}

/// [`load_plans`] on a real server: the plans applied as the admin, [`WRITE_CONCURRENCY`]
/// at a time, then watched until each has a validation status.
async fn load_plans_through_api(
    world: &World,
    n: usize,
    timeout: Duration,
) -> Result<Duration, String> {
    let t0 = Instant::now();
    let mut puts = stream::iter(0..n)
        .map(|i| world.mgmt.put(plan(i)))
        .buffer_unordered(WRITE_CONCURRENCY);
    while let Some(r) = puts.next().await {
        r.map_err(|e| e.to_string())?;
    }
    let api: Api<RecoveryPlan> = Api::namespaced(world.mgmt.client.clone(), STORM_NS);
    let mut validated = HashSet::new();
    let watch = async {
        let plans = watcher(api, watcher::Config::default()).applied_objects();
        futures::pin_mut!(plans);
        while let Some(p) = plans.next().await {
            let p = p.map_err(|e| format!("watch the plans: {e}"))?;
            if p.status.as_ref().is_some_and(|s| s.validation.is_some()) {
                validated.insert(p.name_any());
                if validated.len() >= n {
                    return Ok(());
                }
            }
        }
        Err("the watch of the plans ended".to_string())
    };
    match tokio::time::timeout(timeout.saturating_sub(t0.elapsed()), watch).await {
        Ok(Ok(())) => Ok(t0.elapsed()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!(
            "{} of {n} plans validated within {}s",
            validated.len(),
            timeout.as_secs()
        )),
    }
}

/// The server's own write throughput: `n` ConfigMaps created in the storm's namespace by
/// the harness's plain client, [`WRITE_CONCURRENCY`] in flight; creations per second.
pub async fn server_writes(world: &World, n: usize) -> Result<f64, String> {
    let api: Api<ConfigMap> = Api::namespaced(world.mgmt.client.clone(), STORM_NS);
    let pp = PostParams::default();
    let t0 = Instant::now();
    let mut creates = stream::iter(0..n)
        .map(|i| {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(format!("write-{i:05}")),
                    ..Default::default()
                },
                data: Some([("value".to_string(), i.to_string())].into()),
                ..Default::default()
            };
            let (api, pp) = (&api, &pp);
            async move { api.create(pp, &cm).await }
        })
        .buffer_unordered(WRITE_CONCURRENCY);
    while let Some(r) = creates.next().await {
        r.map_err(|e| format!("create a ConfigMap: {e}"))?;
    }
    per_s(n, t0.elapsed()).ok_or_else(|| "no time measured".to_string())
}

fn batches(cfg: &StormConfig, base: jiff::Timestamp) -> Vec<Value> {
    let all: Vec<Alert> = (0..cfg.alerts)
        .map(|i| {
            let shard = (i % cfg.plans.max(1)).to_string();
            Alert::new(
                &format!("storm-{i}"),
                &[
                    ("alertname", "StormAlert"),
                    ("shard", &shard),
                    ("severity", "warning"),
                ],
                base,
            )
        })
        .collect();
    all.chunks(cfg.batch.max(1)).map(alerts::payload).collect()
}

/// Sends every webhook (bounded concurrency); returns (alerts created, existing, wall time).
async fn send_all(
    http: &reqwest::Client,
    url: &str,
    bodies: &[Value],
    failures: &mut Vec<String>,
    what: &str,
) -> (usize, usize, Duration) {
    let t0 = Instant::now();
    let results: Vec<_> = stream::iter(bodies)
        .map(|b| alerts::send(http, url, b))
        .buffer_unordered(SEND_CONCURRENCY)
        .collect()
        .await;
    let took = t0.elapsed();
    let (mut created, mut existing) = (0, 0);
    for r in results {
        match r {
            Ok((s, _)) => {
                created += s.created;
                existing += s.existing;
            }
            Err(e) => failures.push(format!("storm {what}: {e}")),
        }
    }
    (created, existing, took)
}

fn per_s(n: usize, d: Duration) -> Option<f64> {
    (d.as_secs_f64() > 0.0).then(|| n as f64 / d.as_secs_f64())
}

pub async fn run(
    world: &World,
    obs: &Observer,
    http: &reqwest::Client,
    webhook_url: &str,
    controller: (u32, &str),
    cfg: StormConfig,
) -> StormResult {
    let (controller_pid, metrics_url) = controller;
    let mut r = StormResult {
        plans: cfg.plans,
        alerts: cfg.alerts,
        batch: cfg.batch,
        ..Default::default()
    };
    if let Err(e) = world::storm_target(&world.mgmt).await {
        r.failures.push(format!("storm: {e}"));
        return r;
    }
    match server_writes(world, WRITES).await {
        Ok(rate) => r.server_writes_per_s = Some(rate),
        Err(e) => {
            r.failures
                .push(format!("storm: the server's write throughput: {e}"));
            return r;
        }
    }
    match load_plans(world, cfg.plans, cfg.timeout).await {
        Ok(d) => r.plans_validated_s = Some(d.as_secs_f64()),
        Err(e) => {
            r.failures.push(format!("storm: loading the plans: {e}"));
            return r;
        }
    }
    let bodies = batches(&cfg, jiff::Timestamp::now());
    let url = format!("{webhook_url}/{STORM_NS}");
    // Count only the storm's requests: the plans' validation writes end first.
    api_counts::settle(
        world,
        Actor::Lifeboat,
        Duration::from_millis(500),
        Duration::from_secs(30),
    )
    .await;
    world.reset_stats();
    let cpu_before = CpuSample::take(world, controller_pid);
    let events_before = controller_events(http, metrics_url).await;

    // First send.
    let t0 = Instant::now();
    let (created, _, took) = send_all(http, &url, &bodies, &mut r.failures, "send").await;
    r.stored_s = Some(took.as_secs_f64());
    r.stored_per_s = per_s(cfg.alerts, took);
    if created != cfg.alerts {
        r.failures.push(format!(
            "storm: the receiver reported {created} alerts created, expected {}",
            cfg.alerts
        ));
    }
    let n = cfg.alerts;
    let all_done = obs
        .wait_counts(STORM_NS, cfg.timeout, |c| {
            c.processed >= n && c.finished >= n
        })
        .await;
    let c = obs.counts(STORM_NS);
    if !all_done {
        r.failures.push(format!(
            "storm: within {}s only {} of {n} alerts were processed and {} of {n} runs finished",
            cfg.timeout.as_secs(),
            c.processed,
            c.finished
        ));
    }
    if let Some(t) = obs.last_processed(STORM_NS) {
        let d = t.saturating_duration_since(t0);
        r.processed_s = Some(d.as_secs_f64());
        r.processed_per_s = per_s(c.processed, d);
    }
    if let Some(t) = obs.last_finished(STORM_NS) {
        let d = t.saturating_duration_since(t0);
        r.runs_finished_s = Some(d.as_secs_f64());
        r.runs_per_s = per_s(c.finished, d);
    }
    let before = c;
    // Until the Events and plan status of the last runs are sent too.
    api_counts::settle(
        world,
        Actor::Lifeboat,
        Duration::from_secs(1),
        Duration::from_secs(30),
    )
    .await;
    match (cpu_before, CpuSample::take(world, controller_pid)) {
        (Some(start), Some(end)) => r.cpu = Some(end.since(&start)),
        _ => r
            .failures
            .push("storm: cannot read the processes' CPU time from /proc".into()),
    }
    match (events_before, controller_events(http, metrics_url).await) {
        (Ok(before), Ok(after)) => {
            r.events = after
                .into_iter()
                .map(|(outcome, n)| {
                    let was = before.get(&outcome).copied().unwrap_or(0);
                    (outcome, n.saturating_sub(was))
                })
                .collect();
        }
        (Err(e), _) | (_, Err(e)) => r
            .failures
            .push(format!("storm: reading the controller's Event counts: {e}")),
    }
    match api_counts::snapshot(world, Actor::Lifeboat) {
        Ok(counts) => {
            let per_alert = api_counts::per_run(&counts, n, &Default::default());
            let writes = per_alert.writes();
            r.ceiling_per_s = r
                .server_writes_per_s
                .filter(|_| writes > 0.0)
                .map(|w| w / writes);
            r.requests = Some(per_alert);
        }
        Err(e) => r
            .failures
            .push(format!("storm: counting lifeboat's requests: {e}")),
    }

    // The same webhooks again.
    let (created, existing, took) = send_all(http, &url, &bodies, &mut r.failures, "re-send").await;
    r.resend_s = Some(took.as_secs_f64());
    r.resend_per_s = per_s(cfg.alerts, took);
    r.resend_alerts_created = created;
    if existing != cfg.alerts {
        r.failures.push(format!(
            "storm: the re-send found {existing} existing alerts, expected {}",
            cfg.alerts
        ));
    }
    // Let whatever the re-send may have triggered happen before counting.
    crate::api_counts::settle(
        world,
        crate::identity::Actor::Lifeboat,
        Duration::from_secs(1),
        Duration::from_secs(30),
    )
    .await;
    let after = obs.counts(STORM_NS);
    r.resend_runs_created = after.runs.saturating_sub(before.runs);
    let new_alerts = after.alerts.saturating_sub(before.alerts);
    if created != 0 || new_alerts != 0 {
        r.failures.push(format!(
            "storm: the re-send created {created} alerts (receiver) / {new_alerts} (watch), expected 0"
        ));
    }
    if r.resend_runs_created != 0 {
        r.failures.push(format!(
            "storm: the re-send created {} runs, expected 0",
            r.resend_runs_created
        ));
    }
    r.alerts_present = after.alerts;
    r.runs_present = after.runs;
    r.runs_completed = after.completed;
    if after.runs != n {
        r.failures.push(format!(
            "storm: {} runs for {n} alerts each matching one plan, expected exactly {n}",
            after.runs
        ));
    }
    if after.completed != after.runs {
        let failed = obs.failed_runs(STORM_NS);
        r.failures.push(format!(
            "storm: {} of {} runs Completed; first failures: {:?}",
            after.completed,
            after.runs,
            failed.iter().take(3).collect::<Vec<_>>()
        ));
    }
    for (alert, plan, count) in obs.duplicate_runs(STORM_NS).into_iter().take(5) {
        r.failures.push(format!(
            "storm: {count} runs for alert {alert} and plan {plan}, expected 1"
        ));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_event_outcomes_from_the_metrics_text() {
        let text = "# HELP lifeboat_events Kubernetes Events\n\
                    # TYPE lifeboat_events counter\n\
                    lifeboat_events_total{outcome=\"Published\"} 1520\n\
                    lifeboat_events_total{outcome=\"Dropped\"} 8480.0\n\
                    lifeboat_runs_total{outcome=\"Completed\"} 3\n";
        let got = events_by_outcome(text);
        assert_eq!(
            got,
            BTreeMap::from([
                ("Dropped".to_string(), 8480),
                ("Published".to_string(), 1520)
            ])
        );
    }
}
