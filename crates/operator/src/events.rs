//! Publishing Kubernetes Events (`events.k8s.io/v1`) in the background, as kube's
//! `Recorder` does, with two differences that matter in an alert storm:
//!
//! - **A bounded series cache.** An Event repeated (same regarding object and fieldPath,
//!   related object, type, reason and action) within [`SERIES_WINDOW`] becomes a series:
//!   its count is raised with a PATCH instead of a new Event, as Kubernetes aggregates
//!   Events. The cache holds only each Event's name and count, expires in time order, and
//!   is capped at [`SERIES_CAP`] entries. (kube's `Recorder` keeps every whole Event for
//!   six minutes and scans its whole cache on each publish: tens of megabytes and
//!   quadratic work when 10 000 runs publish in a minute.)
//! - **Coalescing of a start into its outcome.** An Event published as
//!   [`Pending::UntilSuperseded`] (a run or a step that started) waits up to
//!   [`COALESCE_WINDOW`]; if the next Event about the same object and fieldPath (its
//!   outcome) comes first, one Event is sent carrying both notes. A quick run or step costs
//!   one Event instead of two; one that takes longer still shows its start after the
//!   window.
//!
//! And a run's Events (about the run, or about its alert with the run as `related`) wait
//! while the run executes, at most [`COALESCE_WINDOW`] after they were queued
//! ([`RunsInFlight`]): a quick run's Events are written after its own requests rather than
//! among them, so they do not compete with the run for the API server.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::telemetry::Metrics;
use crate::writes::{self, Part};

/// How long a repeated Event is folded into the series of the first.
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// The most Events remembered for series at once (the oldest are forgotten first).
const SERIES_CAP: usize = 4096;
/// How long a step's start waits for its outcome before it is sent alone.
pub const COALESCE_WINDOW: Duration = Duration::from_secs(1);
/// How many Events may wait to be published before new ones are dropped.
pub const QUEUE: usize = 1024;

/// Outcomes of an Event in `lifeboat_events_total`.
pub const OUTCOME_PUBLISHED: &str = "Published";
pub const OUTCOME_FAILED: &str = "Failed";
pub const OUTCOME_DROPPED: &str = "Dropped";

/// The longest note kept (the API server refuses notes over 1 kB).
const NOTE_LIMIT: usize = 1000;

fn truncate(note: &mut String, limit: usize) {
    if note.len() > limit {
        let mut cut = limit;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
}

/// Whether an Event is sent at once or may be folded into the next one about its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    Send,
    /// Held up to [`COALESCE_WINDOW`]; joined with the next Event about the same object.
    UntilSuperseded,
}

/// One Event to publish.
#[derive(Clone, Debug)]
pub struct Record {
    pub regarding: ObjectReference,
    pub related: Option<ObjectReference>,
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: String,
    pub action: String,
    pub note: String,
    pub pending: Pending,
    /// When it was queued: how long it may still wait for its run.
    pub queued: Instant,
}

/// Who reports the Events (`reportingController`, `reportingInstance`).
#[derive(Clone, Debug)]
pub struct Reporter {
    pub controller: String,
    pub instance: Option<String>,
}

/// The sending half; dropping every clone ends the background task after it has sent
/// what was held back.
pub type Sender = mpsc::Sender<Record>;

/// Starts the background publisher, counting what it publishes and fails to in `metrics`;
/// a run's Events wait while `runs` holds it.
pub fn spawn(client: Client, reporter: Reporter, metrics: Metrics, runs: RunsInFlight) -> Sender {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(Publisher::new(client, reporter, metrics, runs).run(rx));
    tx
}

/// How long a run stays in flight without finishing before it no longer holds its Events
/// back (a run whose executor stopped without saying so).
const IN_FLIGHT_FORGOTTEN: Duration = Duration::from_secs(60);

/// The runs executing now, by `namespace/name`: from the alert controller's create (before
/// its `RunCreated` Event is queued) until the run's reconcile returns.
#[derive(Clone, Default)]
pub struct RunsInFlight(Arc<InFlight>);

#[derive(Default)]
struct InFlight {
    since: Mutex<HashMap<String, Instant>>,
    ended: Notify,
}

impl RunsInFlight {
    /// The run `namespace/name` executes from now on.
    pub fn begin(&self, namespace: &str, name: &str) {
        let now = Instant::now();
        let mut since = self.0.since.lock().unwrap_or_else(PoisonError::into_inner);
        since.retain(|_, t| now.duration_since(*t) < IN_FLIGHT_FORGOTTEN);
        since.insert(format!("{namespace}/{name}"), now);
    }

    /// The run `namespace/name` no longer executes: its Events go.
    pub fn end(&self, namespace: &str, name: &str) {
        let removed = self
            .0
            .since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&format!("{namespace}/{name}"));
        if removed.is_some() {
            self.0.ended.notify_waiters();
        }
    }

    fn holds(&self, key: &str) -> bool {
        self.0
            .since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(key)
    }

    /// Waits until the run `key` no longer executes, or `until`.
    async fn wait(&self, key: &str, until: Instant) {
        crate::wait::until(&self.0.ended, until, || !self.holds(key)).await;
    }
}

/// The run an Event belongs to (`namespace/name`): the object it is about, or its related
/// object, when that is a RecoveryRun.
fn run_of(rec: &Record) -> Option<String> {
    [Some(&rec.regarding), rec.related.as_ref()]
        .into_iter()
        .flatten()
        .find(|r| r.kind.as_deref() == Some("RecoveryRun"))
        .map(|r| {
            format!(
                "{}/{}",
                r.namespace.as_deref().unwrap_or_default(),
                r.name.as_deref().unwrap_or_default()
            )
        })
}

/// The identity of the object (and field) an Event is about.
fn object_key(r: &ObjectReference) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        r.uid.as_deref().unwrap_or_default(),
        r.namespace.as_deref().unwrap_or_default(),
        r.kind.as_deref().unwrap_or_default(),
        r.name.as_deref().unwrap_or_default(),
        r.field_path.as_deref().unwrap_or_default()
    )
}

/// What makes two Events the same Event (a series): as Kubernetes' event aggregation.
fn series_key(rec: &Record) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        object_key(&rec.regarding),
        rec.related.as_ref().map(object_key).unwrap_or_default(),
        rec.type_,
        rec.reason,
        rec.action
    )
}

struct Seen {
    name: String,
    namespace: String,
    count: i32,
    last: Instant,
}

struct Publisher {
    client: Client,
    reporter: Reporter,
    metrics: Metrics,
    runs: RunsInFlight,
    /// Held-back starts by object key, with the time they are due.
    held: HashMap<String, (Record, Instant)>,
    series: HashMap<String, Seen>,
    /// Series keys in the order they were last seen (may hold stale duplicates).
    order: VecDeque<(Instant, String)>,
}

impl Publisher {
    fn new(client: Client, reporter: Reporter, metrics: Metrics, runs: RunsInFlight) -> Self {
        Publisher {
            client,
            reporter,
            metrics,
            runs,
            held: HashMap::new(),
            series: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Record>) {
        loop {
            let next_due = self.held.values().map(|(_, due)| *due).min();
            let received = match next_due {
                Some(due) => tokio::select! {
                    r = rx.recv() => r,
                    () = tokio::time::sleep_until(due) => {
                        self.send_due(Instant::now()).await;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            let Some(rec) = received else { break };
            self.accept(rec).await;
        }
        // Shutting down: what was held back is still sent.
        self.send_due(Instant::now() + COALESCE_WINDOW).await;
    }

    async fn accept(&mut self, rec: Record) {
        let key = object_key(&rec.regarding);
        let rec = match self.held.remove(&key) {
            // The outcome of a held-back start: one Event with both notes.
            Some((start, _)) => Record {
                note: format!("{}; {}", start.note, rec.note),
                ..rec
            },
            None => rec,
        };
        match rec.pending {
            Pending::UntilSuperseded => {
                self.held
                    .insert(key, (rec, Instant::now() + COALESCE_WINDOW));
            }
            Pending::Send => self.send(rec).await,
        }
    }

    async fn send_due(&mut self, now: Instant) {
        let due: Vec<String> = self
            .held
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some((rec, _)) = self.held.remove(&key) {
                self.send(rec).await;
            }
        }
    }

    /// Forgets series older than the window, and the oldest beyond the cap.
    fn expire(&mut self, now: Instant) {
        while let Some((at, key)) = self.order.front() {
            let stale = self.series.get(key).is_none_or(|s| s.last != *at);
            let too_old = now.duration_since(*at) > SERIES_WINDOW;
            if stale || too_old || self.series.len() > SERIES_CAP {
                if !stale {
                    self.series.remove(key);
                }
                self.order.pop_front();
            } else {
                break;
            }
        }
    }

    async fn send(&mut self, mut rec: Record) {
        if let Some(run) = run_of(&rec) {
            self.runs.wait(&run, rec.queued + COALESCE_WINDOW).await;
        }
        truncate(&mut rec.note, NOTE_LIMIT);
        let now = Instant::now();
        self.expire(now);
        let key = series_key(&rec);
        let namespace = rec
            .regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let at = MicroTime(jiff::Timestamp::now());
        let result = match self.series.get_mut(&key) {
            Some(seen) => {
                seen.count += 1;
                seen.last = now;
                let patch = serde_json::json!({
                    "series": EventSeries { count: seen.count, last_observed_time: at },
                    "note": rec.note,
                });
                let url = Event::url_path(&(), Some(&seen.namespace));
                let pp = PatchParams::default();
                writes::patch(
                    &self.client,
                    &url,
                    &seen.name,
                    Part::Object,
                    &pp,
                    &Patch::Merge(&patch),
                )
                .await
            }
            None => {
                let name = format!(
                    "{}.{:x}",
                    rec.regarding.name.as_deref().unwrap_or("event"),
                    at.0.as_nanosecond()
                );
                let event = self.event(&rec, &name, &namespace, at);
                let url = Event::url_path(&(), Some(&namespace));
                let created =
                    writes::create(&self.client, &url, &PostParams::default(), &event).await;
                if created.is_ok() {
                    self.series.insert(
                        key.clone(),
                        Seen {
                            name,
                            namespace,
                            count: 1,
                            last: now,
                        },
                    );
                }
                created.map(|_| ())
            }
        };
        self.order.push_back((now, key));
        match result {
            Ok(()) => {
                self.metrics.event(OUTCOME_PUBLISHED);
            }
            Err(e) => {
                self.metrics.event(OUTCOME_FAILED);
                tracing::debug!(error = %e, reason = %rec.reason, "failed to publish an event");
            }
        }
    }

    fn event(&self, rec: &Record, name: &str, namespace: &str, at: MicroTime) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            action: Some(rec.action.clone()),
            reason: Some(rec.reason.clone()),
            note: Some(rec.note.clone()),
            type_: Some(rec.type_.to_string()),
            regarding: Some(rec.regarding.clone()),
            related: rec.related.clone(),
            event_time: Some(at),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..Event::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use kube::Api;

    async fn client() -> (lifeboat_sim::SimCluster, Client) {
        let sim = lifeboat_sim::SimCluster::start("events").await.unwrap();
        let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        (sim, Client::try_from(cfg).unwrap())
    }

    fn record(field: &str, reason: &str, note: &str, pending: Pending) -> Record {
        Record {
            regarding: ObjectReference {
                api_version: Some("recovery.elotl.co/v1alpha1".into()),
                kind: Some("RecoveryRun".into()),
                name: Some("r".into()),
                namespace: Some("default".into()),
                uid: Some("u-1".into()),
                field_path: Some(field.into()),
                ..ObjectReference::default()
            },
            related: None,
            type_: "Normal",
            reason: reason.into(),
            action: "ExecuteStep".into(),
            note: note.into(),
            pending,
            queued: Instant::now(),
        }
    }

    /// The Events in `default` once `n` exist (the publisher works in the background).
    async fn events(client: &Client, n: usize) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(client.clone(), "default");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let items = api.list(&Default::default()).await.unwrap().items;
            if items.len() >= n {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "only {} events: {items:?}",
                items.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn repeats_become_a_series_and_a_start_joins_its_outcome() {
        let (_sim, client) = client().await;
        let mut registry = prometheus_client::registry::Registry::default();
        let tx = spawn(
            client.clone(),
            Reporter {
                controller: "lifeboat".into(),
                instance: Some("replica-0".into()),
            },
            Metrics::new(&mut registry),
            RunsInFlight::default(),
        );
        for note in ["first", "second", "third"] {
            tx.send(record("spec.steps[9]", "Retrying", note, Pending::Send))
                .await
                .unwrap();
        }
        tx.send(record(
            "spec.steps[0]",
            "StepStarted",
            "step 1 started",
            Pending::UntilSuperseded,
        ))
        .await
        .unwrap();
        tx.send(record(
            "spec.steps[0]",
            "StepSucceeded",
            "step 1 succeeded",
            Pending::Send,
        ))
        .await
        .unwrap();
        // A start with no outcome is sent alone once the window has passed.
        tx.send(record(
            "spec.steps[1]",
            "StepStarted",
            "step 2 started",
            Pending::UntilSuperseded,
        ))
        .await
        .unwrap();
        let all = events(&client, 3).await;
        assert_eq!(all.len(), 3, "{all:#?}");
        let by_reason = |r: &str| all.iter().find(|e| e.reason.as_deref() == Some(r)).unwrap();
        let series = by_reason("Retrying");
        assert_eq!(
            series.series.as_ref().map(|s| s.count),
            Some(3),
            "{series:#?}"
        );
        assert_eq!(series.note.as_deref(), Some("third"));
        assert_eq!(
            by_reason("StepSucceeded").note.as_deref(),
            Some("step 1 started; step 1 succeeded")
        );
        let started = by_reason("StepStarted");
        assert_eq!(started.note.as_deref(), Some("step 2 started"));
        assert_eq!(started.reporting_instance.as_deref(), Some("replica-0"));
        // Three creates and the series' two patches.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            if text.contains("lifeboat_events_total{outcome=\"Published\"} 5") {
                assert!(!text.contains("outcome=\"Failed\""), "{text}");
                break;
            }
            assert!(Instant::now() < deadline, "{text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// When the Event `reason` was written, after it was queued at `queued`.
    async fn written_after(client: &Client, reason: &str, queued: jiff::Timestamp) -> Duration {
        let all = events(client, 1).await;
        let e = all
            .iter()
            .find(|e| e.reason.as_deref() == Some(reason))
            .unwrap();
        let at = e.event_time.as_ref().unwrap().0;
        Duration::try_from(at.duration_since(queued)).unwrap()
    }

    #[tokio::test]
    async fn a_runs_events_wait_while_it_executes_and_no_longer() {
        let (_sim, client) = client().await;
        let runs = RunsInFlight::default();
        let tx = spawn(
            client.clone(),
            Reporter {
                controller: "lifeboat".into(),
                instance: None,
            },
            Metrics::new(&mut prometheus_client::registry::Registry::default()),
            runs.clone(),
        );
        // A run that never says it ended holds its Event the whole window, no longer.
        runs.begin("default", "r");
        let queued = jiff::Timestamp::now();
        tx.send(record("", "RunStarted", "held", Pending::Send))
            .await
            .unwrap();
        let waited = written_after(&client, "RunStarted", queued).await;
        assert!(
            (COALESCE_WINDOW..COALESCE_WINDOW * 5).contains(&waited),
            "held while the run executes, at most the window: {waited:?}"
        );
        // A run that ends lets its Event go at once.
        let queued = jiff::Timestamp::now();
        tx.send(record("", "RunCompleted", "released", Pending::Send))
            .await
            .unwrap();
        runs.end("default", "r");
        let waited = written_after(&client, "RunCompleted", queued).await;
        assert!(
            waited < COALESCE_WINDOW,
            "sent once the run ended: {waited:?}"
        );
    }
}
