//! What every controller and the executor share: clients, metrics, events and the clock.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::runtime::events::EventType;
use kube::runtime::reflector::Store;
use lifeboat_api::{RecoveryPlan, RecoveryRun};
use tokio_util::sync::CancellationToken;

use crate::clusters::ClusterRegistry;
use crate::events::{self, Pending};
use crate::index::Indexes;
use crate::last_run::LastRuns;
use crate::recent_runs::RecentRuns;
use crate::telemetry::Metrics;

/// Source of the current time; injected so tests can be deterministic.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> jiff::Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// Publishes Kubernetes Events in the background ([`crate::events`]), so a step never
/// waits on an Event write. Events are best effort: a full queue or a failed write is
/// logged, not an error.
#[derive(Clone)]
pub struct Events {
    tx: events::Sender,
    /// Counts each Event's outcome; its Dropped count also paces the warnings.
    metrics: Metrics,
    /// The runs executing now, whose Events wait for them (briefly).
    runs: events::RunsInFlight,
}

/// A run executing: its Events wait until this is dropped (or the hold ends).
pub struct RunExecuting {
    runs: events::RunsInFlight,
    namespace: String,
    name: String,
}

impl Drop for RunExecuting {
    fn drop(&mut self) {
        self.runs.end(&self.namespace, &self.name);
    }
}

/// A storm drops Events by the thousand: one warning each would flood the log, so the
/// first drop and then every this-many-th are logged.
const DROPS_PER_WARNING: u64 = 1000;

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// Events published with `client` as `reporter`. Spawns the publishing task (needs a
    /// Tokio runtime); the task ends when every handle is dropped.
    pub fn new(client: Client, reporter: &str, instance: Option<String>, metrics: Metrics) -> Self {
        let runs = events::RunsInFlight::default();
        let tx = events::spawn(
            client,
            events::Reporter {
                controller: reporter.to_string(),
                instance,
            },
            metrics.clone(),
            runs.clone(),
        );
        Events { tx, metrics, runs }
    }

    #[cfg(test)]
    fn with_sender(tx: events::Sender, metrics: Metrics) -> Self {
        Events {
            tx,
            metrics,
            runs: Default::default(),
        }
    }

    /// The run `namespace/name` was just created and is about to execute: its Events (and
    /// its alert's `RunCreated`) wait for it until [`Events::run_executing`]'s guard drops.
    pub fn run_created(&self, namespace: &str, name: &str) {
        self.runs.begin(namespace, name);
    }

    /// The run `namespace/name` executes until the guard is dropped; its Events wait until
    /// then (at most [`crate::events::COALESCE_WINDOW`] each), so that they are written
    /// after its requests rather than among them.
    pub fn run_executing(&self, namespace: &str, name: &str) -> RunExecuting {
        self.runs.begin(namespace, name);
        RunExecuting {
            runs: self.runs.clone(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// Queues an event about `regarding`.
    pub fn publish(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        self.queue(regarding, None, type_, reason, action, note, Pending::Send);
    }

    /// Queues an event about `regarding` that also concerns `related` (the run an alert
    /// created, the plan it skipped).
    ///
    /// Events with the same regarding object (including its `fieldPath`), related object,
    /// type, reason and action are one event whose series count grows; give each distinct
    /// happening its own `related` or `fieldPath` (a run's steps use `spec.steps[i]`) so its
    /// note is not folded into an earlier one.
    pub fn publish_related(
        &self,
        regarding: ObjectReference,
        related: Option<ObjectReference>,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        self.queue(
            regarding,
            related,
            type_,
            reason,
            action,
            note,
            Pending::Send,
        );
    }

    /// Queues an event that the next event about the same object (and fieldPath) may
    /// absorb: a step's start, which its outcome then reports too when the step is quick
    /// ([`crate::events::COALESCE_WINDOW`]).
    pub fn publish_coalesced(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        self.queue(
            regarding,
            None,
            type_,
            reason,
            action,
            note,
            Pending::UntilSuperseded,
        );
    }

    #[allow(clippy::too_many_arguments)] // the fields of one Event, passed through
    fn queue(
        &self,
        regarding: ObjectReference,
        related: Option<ObjectReference>,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
        pending: Pending,
    ) {
        let record = events::Record {
            regarding,
            related,
            type_: match type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            },
            reason: reason.to_string(),
            action: action.to_string(),
            note: note.into(),
            pending,
            queued: tokio::time::Instant::now(),
        };
        // Never waits: a step must not stall on an Event. The run's status records every
        // step whatever happens to its Events, so a full queue drops the Event, counted.
        if self.tx.try_send(record).is_err() {
            let dropped = self.metrics.event(events::OUTCOME_DROPPED);
            if dropped == 1 || dropped.is_multiple_of(DROPS_PER_WARNING) {
                tracing::warn!(
                    reason,
                    dropped,
                    "the Event queue is full ({} waiting): Events are dropped and counted in \
                     lifeboat_events_total{{outcome=\"Dropped\"}}; run status still records every step",
                    events::QUEUE
                );
            }
        }
    }
}

/// Shared state of the controllers and the executor.
#[derive(Clone)]
pub struct Context {
    /// Client of the cluster lifeboat runs in (its own identity).
    pub client: Client,
    /// Clients of every cluster, impersonating clients, discovery.
    pub clusters: ClusterRegistry,
    pub metrics: Metrics,
    pub events: Events,
    pub clock: Arc<dyn Clock>,
    /// Cache of every RecoveryPlan (fed by the plan controller's watch).
    pub plans: Store<RecoveryPlan>,
    /// Cache of every RecoveryRun (fed by the run controller's watch).
    pub runs: Store<RecoveryRun>,
    /// Plans by alert labels and runs by plan, fed by the same watches as the caches.
    pub indexes: Arc<Indexes>,
    /// Runs the alert controller created that the cache may not show yet.
    pub recent_runs: Arc<RecentRuns>,
    /// Cancelled when the process stops executing (shutdown or lost leadership): a step
    /// in flight is abandoned (left Running, re-executed by the next executor).
    pub shutdown: CancellationToken,
    /// The plans' last runs, written coalesced.
    pub last_runs: LastRuns,
    /// How long processed ReceivedAlerts are kept; `None` keeps them.
    pub alert_retention: Option<std::time::Duration>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("clusters", &self.clusters)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The current time as a Kubernetes timestamp.
    pub fn now(&self) -> Time {
        Time(self.clock.now())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_beyond_a_full_queue_are_dropped_and_counted() {
        let mut registry = prometheus_client::registry::Registry::default();
        // A queue of one that nothing reads: the first Event waits, the rest find it full.
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let events = Events::with_sender(tx, Metrics::new(&mut registry));
        for note in ["waits", "dropped", "dropped too"] {
            events.publish(
                ObjectReference::default(),
                EventType::Normal,
                "Tested",
                "Test",
                note,
            );
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("lifeboat_events_total{outcome=\"Dropped\"} 2"),
            "{text}"
        );
    }
}
