//! Client-side timing: watches on ReceivedAlerts and RecoveryRuns record when each object
//! was first seen, processed, started and finished. Kubernetes timestamps have one-second
//! precision, far too coarse for millisecond latencies, so every time here is an
//! [`Instant`] taken when the watch event arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use lifeboat_api::{ReceivedAlert, RecoveryRun, RunPhase, StepPhase};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The label every benchmark alert carries, unique per alert.
pub const BENCH_ID: &str = "bench_id";

/// What was seen of one ReceivedAlert.
#[derive(Clone, Debug)]
pub struct AlertSeen {
    pub namespace: String,
    pub bench_id: Option<String>,
    /// First watch event (creation).
    pub seen: Instant,
    /// First event with `status.processed: true`.
    pub processed: Option<Instant>,
    /// `status.runs` as last seen.
    pub runs: Vec<String>,
    /// `status.message` as last seen (why no run was started, say).
    pub message: Option<String>,
}

/// What was seen of one RecoveryRun.
#[derive(Clone, Debug)]
pub struct RunSeen {
    pub namespace: String,
    pub bench_id: Option<String>,
    pub alert: String,
    pub plan: Option<String>,
    pub seen: Instant,
    /// First event showing step 1 Running (or any later progress).
    pub first_step: Option<Instant>,
    /// First event with a finished phase.
    pub finished: Option<Instant>,
    pub phase: RunPhase,
    pub message: Option<String>,
}

#[derive(Default)]
struct State {
    alerts: HashMap<(String, String), AlertSeen>,
    runs: HashMap<(String, String), RunSeen>,
    /// bench_id → alert key / run keys (so lookups stay cheap with 10 000 objects).
    alert_by_id: HashMap<String, (String, String)>,
    runs_by_id: HashMap<String, Vec<(String, String)>>,
    /// Kept up to date on every event, per namespace.
    counts: HashMap<String, Counts>,
    synced: (bool, bool),
}

/// Watches alerts and runs in every namespace of the management cluster.
#[derive(Clone)]
pub struct Observer {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    tasks: Arc<Vec<JoinHandle<()>>>,
}

impl Drop for Observer {
    fn drop(&mut self) {
        if Arc::strong_count(&self.tasks) == 1 {
            for t in self.tasks.iter() {
                t.abort();
            }
        }
    }
}

/// Watches every `K` in the cluster, recording each object seen with `record` (and the end
/// of the initial list with `synced`) at the moment its event arrives.
fn spawn_watch<K>(
    client: &Client,
    state: &Arc<Mutex<State>>,
    changed: &Arc<Notify>,
    record: fn(&mut State, &K, Instant),
    synced: fn(&mut State),
) -> JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let (state, changed) = (state.clone(), changed.clone());
    let api: Api<K> = Api::all(client.clone());
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let now = Instant::now();
            let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
            match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    record(&mut st, &o, now);
                }
                Ok(watcher::Event::InitDone) => synced(&mut st),
                Ok(_) | Err(_) => {}
            }
            drop(st);
            changed.notify_waiters();
        }
    })
}

fn started(run: &RecoveryRun) -> bool {
    run.status.as_ref().is_some_and(|s| {
        s.phase != RunPhase::Pending
            || s.steps
                .first()
                .is_some_and(|st| st.phase != StepPhase::Pending)
    })
}

impl Observer {
    /// Starts the watches; returns once both have listed (so nothing later is missed).
    pub async fn start(client: &Client) -> Observer {
        let state = Arc::new(Mutex::new(State::default()));
        let changed = Arc::new(Notify::new());
        let alerts = spawn_watch::<ReceivedAlert>(client, &state, &changed, record_alert, |st| {
            st.synced.0 = true
        });
        let runs = spawn_watch::<RecoveryRun>(client, &state, &changed, record_run, |st| {
            st.synced.1 = true
        });
        let obs = Observer {
            state,
            changed,
            tasks: Arc::new(vec![alerts, runs]),
        };
        let _ = obs
            .wait_for(Duration::from_secs(30), |st| st.synced.0 && st.synced.1)
            .await;
        obs
    }

    /// Waits until `done` holds on the observed state, or `timeout` passes (`false`).
    async fn wait_for(&self, timeout: Duration, mut done: impl FnMut(&State) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if done(&st) {
                    return true;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Waits until the run of the alert labelled `bench_id` has finished; returns it.
    pub async fn wait_run_finished(&self, bench_id: &str, timeout: Duration) -> Option<RunSeen> {
        let mut found = None;
        self.wait_for(timeout, |st| {
            found = st
                .runs_by_id
                .get(bench_id)
                .into_iter()
                .flatten()
                .filter_map(|k| st.runs.get(k))
                .find(|r| r.finished.is_some())
                .cloned();
            found.is_some()
        })
        .await;
        found
    }

    /// The alert labelled `bench_id`, if seen.
    pub fn alert(&self, bench_id: &str) -> Option<AlertSeen> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.alert_by_id
            .get(bench_id)
            .and_then(|k| st.alerts.get(k))
            .cloned()
    }

    /// Every run whose alert is labelled `bench_id`.
    pub fn runs_of(&self, bench_id: &str) -> Vec<RunSeen> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.runs_by_id
            .get(bench_id)
            .into_iter()
            .flatten()
            .filter_map(|k| st.runs.get(k))
            .cloned()
            .collect()
    }

    /// Counts in one namespace: (alerts, alerts processed, runs, runs finished).
    pub fn counts(&self, namespace: &str) -> Counts {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        count(&st, namespace)
    }

    /// Waits until `done` holds on the counts of `namespace`.
    pub async fn wait_counts(
        &self,
        namespace: &str,
        timeout: Duration,
        mut done: impl FnMut(&Counts) -> bool,
    ) -> bool {
        self.wait_for(timeout, |st| done(&count(st, namespace)))
            .await
    }

    /// Latest of a per-object instant over the objects of `namespace`.
    pub fn last_processed(&self, namespace: &str) -> Option<Instant> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.alerts
            .values()
            .filter(|a| a.namespace == namespace)
            .filter_map(|a| a.processed)
            .max()
    }

    /// Latest finish of a run of `namespace`.
    pub fn last_finished(&self, namespace: &str) -> Option<Instant> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.runs
            .values()
            .filter(|r| r.namespace == namespace)
            .filter_map(|r| r.finished)
            .max()
    }

    /// Runs of `namespace` grouped by (alert, plan) with more than one run.
    pub fn duplicate_runs(&self, namespace: &str) -> Vec<(String, String, usize)> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut by_pair: HashMap<(String, String), usize> = HashMap::new();
        for r in st.runs.values().filter(|r| r.namespace == namespace) {
            *by_pair
                .entry((r.alert.clone(), r.plan.clone().unwrap_or_default()))
                .or_default() += 1;
        }
        let mut dups: Vec<_> = by_pair
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|((a, p), n)| (a, p, n))
            .collect();
        dups.sort();
        dups
    }

    /// Runs of `namespace` that finished in a phase other than Completed (name, message).
    pub fn failed_runs(&self, namespace: &str) -> Vec<(String, String)> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = st
            .runs
            .iter()
            .filter(|((ns, _), r)| ns == namespace && r.phase == RunPhase::Failed)
            .map(|((_, name), r)| (name.clone(), r.message.clone().unwrap_or_default()))
            .collect();
        out.sort();
        out
    }
}

/// Object counts of one namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub alerts: usize,
    pub processed: usize,
    pub runs: usize,
    pub finished: usize,
    pub completed: usize,
}

fn count(st: &State, namespace: &str) -> Counts {
    st.counts.get(namespace).copied().unwrap_or_default()
}

fn record_alert(st: &mut State, a: &ReceivedAlert, now: Instant) {
    let key = (a.namespace().unwrap_or_default(), a.name_any());
    let counts = st.counts.entry(key.0.clone()).or_default();
    let entry = st.alerts.entry(key.clone()).or_insert_with(|| {
        counts.alerts += 1;
        AlertSeen {
            namespace: key.0.clone(),
            bench_id: a.spec.labels.get(BENCH_ID).cloned(),
            seen: now,
            processed: None,
            runs: Vec::new(),
            message: None,
        }
    });
    if let Some(id) = &entry.bench_id {
        st.alert_by_id
            .entry(id.clone())
            .or_insert_with(|| key.clone());
    }
    if let Some(s) = &a.status {
        if s.processed && entry.processed.is_none() {
            entry.processed = Some(now);
            counts.processed += 1;
        }
        entry.runs = s.runs.clone();
        entry.message = s.message.clone();
    }
}

fn record_run(st: &mut State, r: &RecoveryRun, now: Instant) {
    let key = (r.namespace().unwrap_or_default(), r.name_any());
    let counts = st.counts.entry(key.0.clone()).or_default();
    let mut new = false;
    let entry = st.runs.entry(key.clone()).or_insert_with(|| {
        counts.runs += 1;
        new = true;
        RunSeen {
            namespace: key.0.clone(),
            bench_id: r.spec.alert_spec.labels.get(BENCH_ID).cloned(),
            alert: r.spec.alert_spec.name.clone(),
            plan: r.spec.plan_name.clone(),
            seen: now,
            first_step: None,
            finished: None,
            phase: RunPhase::Pending,
            message: None,
        }
    });
    if new && let Some(id) = &entry.bench_id {
        st.runs_by_id
            .entry(id.clone())
            .or_default()
            .push(key.clone());
    }
    if entry.first_step.is_none() && started(r) {
        entry.first_step = Some(now);
    }
    if let Some(s) = &r.status {
        entry.phase = s.phase;
        entry.message = s.message.clone();
        if s.phase.is_finished() && entry.finished.is_none() {
            entry.finished = Some(now);
            counts.finished += 1;
            if s.phase == RunPhase::Completed {
                counts.completed += 1;
            }
        }
    }
}
