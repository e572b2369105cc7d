//! The seed-002 failover through lifeboat: webhook → ReceivedAlert → RecoveryRun →
//! Completed, repeated, each repetition starting from the pre-failover state.

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use lifeboat_api::RecoveryPlan;
use serde::Serialize;

use crate::alerts::{self, Alert};
use crate::api_counts::{self, PerRun};
use crate::identity::Actor;
use crate::observe::Observer;
use crate::stats::Summary;
use crate::world::{LIFEBOAT_NS, World};

/// The plan measured (4 steps, no Job).
pub const PLAN_YAML: &str = include_str!("../plans/ferretdb-failover.yaml");
/// Labels of the failover alert (plus a unique `bench_id`).
pub const ALERT_LABELS: [(&str, &str); 3] = [
    ("alertname", "PostgresPrimaryDown"),
    ("app", "ferretdb"),
    ("severity", "critical"),
];
/// How long one run may take before the repetition counts as failed.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    #[error("the benchmark plan does not parse: {0}")]
    Plan(#[from] serde_json::Error),
    #[error("the benchmark plan is not YAML: {0}")]
    Yaml(String),
    #[error("cannot create the failover plan: {0}")]
    Create(#[source] kube::Error),
}

/// Samples of the measured repetitions.
#[derive(Debug, Default)]
pub struct Samples {
    /// POST sent → 200 received (the receiver answers once the alert is stored).
    pub post_to_200: Vec<Duration>,
    /// POST sent → the ReceivedAlert seen by a watch.
    pub post_to_stored: Vec<Duration>,
    /// ReceivedAlert seen → its RecoveryRun seen.
    pub stored_to_run: Vec<Duration>,
    /// ReceivedAlert seen → the run seen with step 1 started.
    pub stored_to_first_step: Vec<Duration>,
    /// POST sent → the run seen Completed.
    pub webhook_to_completed: Vec<Duration>,
}

#[derive(Debug, Serialize)]
pub struct FailoverResult {
    pub post_to_200: Option<Summary>,
    pub post_to_stored: Option<Summary>,
    pub stored_to_run: Option<Summary>,
    pub stored_to_first_step: Option<Summary>,
    pub webhook_to_completed: Option<Summary>,
    pub api: PerRun,
    pub warmup: usize,
    /// Correctness problems (each fails the benchmark).
    pub failures: Vec<String>,
}

/// Creates the failover plan in mgmt.
pub async fn create_plan(world: &World) -> Result<(), FailoverError> {
    let v: serde_json::Value = serde_yaml_to_json(PLAN_YAML).map_err(FailoverError::Yaml)?;
    let plan: RecoveryPlan = serde_json::from_value(v)?;
    Api::<RecoveryPlan>::namespaced(world.mgmt.client.clone(), LIFEBOAT_NS)
        .create(&PostParams::default(), &plan)
        .await
        .map_err(FailoverError::Create)?;
    Ok(())
}

/// The plan file as JSON.
fn serde_yaml_to_json(yaml: &str) -> Result<serde_json::Value, String> {
    serde_yaml::from_str(yaml).map_err(|e| e.to_string())
}

/// Runs `warmup + n` failovers one after the other; the first `warmup` are not measured.
pub async fn run(
    world: &World,
    obs: &Observer,
    http: &reqwest::Client,
    webhook_url: &str,
    warmup: usize,
    n: usize,
) -> FailoverResult {
    let mut samples = Samples::default();
    let mut failures = Vec::new();
    let base = jiff::Timestamp::now();
    let mut measured = 0;
    for i in 0..warmup + n {
        if i == warmup {
            api_counts::settle(
                world,
                Actor::Lifeboat,
                Duration::from_millis(300),
                Duration::from_secs(10),
            )
            .await;
            world.reset_stats();
        }
        if let Err(e) = world.reset().await {
            failures.push(format!("failover {i}: cannot reset the clusters: {e}"));
            break;
        }
        let id = format!("failover-{i}");
        let starts = base
            .checked_add(jiff::SignedDuration::from_millis(i as i64))
            .unwrap_or(base);
        let alert = Alert::new(&id, &ALERT_LABELS, starts);
        let body = alerts::payload(&[alert]);
        let t0 = Instant::now();
        let sent = alerts::send(http, webhook_url, &body).await;
        let post = match sent {
            Ok((summary, took)) => {
                if summary.created != 1 {
                    failures.push(format!(
                        "failover {i}: the receiver reported {} created alerts, expected 1",
                        summary.created
                    ));
                }
                took
            }
            Err(e) => {
                failures.push(format!("failover {i}: {e}"));
                continue;
            }
        };
        let Some(run) = obs.wait_run_finished(&id, RUN_TIMEOUT).await else {
            let alert = obs.alert(&id);
            failures.push(format!(
                "failover {i}: no run finished within {}s (alert seen: {}, processed: {}, runs: {:?}, message: {:?})",
                RUN_TIMEOUT.as_secs(),
                alert.is_some(),
                alert.as_ref().is_some_and(|a| a.processed.is_some()),
                alert.as_ref().map(|a| a.runs.clone()).unwrap_or_default(),
                alert.and_then(|a| a.message).unwrap_or_default(),
            ));
            continue;
        };
        if run.phase != lifeboat_api::RunPhase::Completed {
            failures.push(format!(
                "failover {i}: run finished {:?}: {}",
                run.phase,
                run.message.clone().unwrap_or_default()
            ));
        }
        let runs = obs.runs_of(&id);
        if runs.len() != 1 {
            failures.push(format!(
                "failover {i}: {} runs for one alert and one plan, expected exactly 1",
                runs.len()
            ));
        }
        if let Err(e) = world.check_failed_over().await {
            failures.push(format!("failover {i}: the run Completed but {e}"));
        }
        if i < warmup {
            continue;
        }
        measured += 1;
        let Some(alert) = obs.alert(&id) else {
            continue;
        };
        samples.post_to_200.push(post);
        samples
            .post_to_stored
            .push(alert.seen.saturating_duration_since(t0));
        samples
            .stored_to_run
            .push(run.seen.saturating_duration_since(alert.seen));
        if let Some(first) = run.first_step {
            samples
                .stored_to_first_step
                .push(first.saturating_duration_since(alert.seen));
        }
        if let Some(done) = run.finished {
            samples
                .webhook_to_completed
                .push(done.saturating_duration_since(t0));
        }
    }
    // Count what the last runs caused after they completed (events, plan status) too.
    api_counts::settle(
        world,
        Actor::Lifeboat,
        Duration::from_millis(300),
        Duration::from_secs(10),
    )
    .await;
    let counts = api_counts::snapshot(world, Actor::Lifeboat).unwrap_or_else(|e| {
        failures.push(format!("cannot count lifeboat's API requests: {e}"));
        Default::default()
    });
    let mut api = api_counts::per_run(&counts, measured, &api_counts::failover_minimum());
    match api_counts::server_times(world, Actor::Lifeboat) {
        Ok(times) => api.set_server_times(&times),
        Err(e) => failures.push(format!("cannot read lifeboat's server times: {e}")),
    }
    FailoverResult {
        post_to_200: Summary::of(&samples.post_to_200),
        post_to_stored: Summary::of(&samples.post_to_stored),
        stored_to_run: Summary::of(&samples.stored_to_run),
        stored_to_first_step: Summary::of(&samples.stored_to_first_step),
        webhook_to_completed: Summary::of(&samples.webhook_to_completed),
        api,
        warmup,
        failures,
    }
}
