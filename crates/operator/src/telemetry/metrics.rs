//! Prometheus metrics of the controller and the webhook receiver (all prefixed `lifeboat_`).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step_type: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CategoryLabels {
    category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: String,
    category: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets from 0.5 ms to ~65 s: the latency from an alert to its run's first step.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

/// Buckets from 50 ms to ~3.6 h: a patch takes milliseconds, a Job step may take its whole
/// default ten-minute deadline, and a run with approvals or long waits may take hours.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 19))
}

struct Inner {
    alerts_received: Family<SourceLabels, Counter>,
    alerts_processed: Family<OutcomeLabels, Counter>,
    runs_started: Counter,
    runs: Family<OutcomeLabels, Counter>,
    step_duration: HistogramFamily<StepLabels>,
    run_duration: HistogramFamily<OutcomeLabels>,
    alert_to_run_start: Histogram,
    api_errors: Family<CategoryLabels, Counter>,
    reconcile_errors: Family<ReconcileLabels, Counter>,
    notifications: Family<OutcomeLabels, Counter>,
    events: Family<OutcomeLabels, Counter>,
    webhook_requests: Family<CodeLabels, Counter>,
    leader: Gauge,
    runs_in_flight: Gauge,
    plans_invalid: Gauge,
}

/// Handle on every lifeboat metric; cheap to clone (shared inside).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Metrics {
        let inner = Inner {
            alerts_received: Family::default(),
            alerts_processed: Family::default(),
            runs_started: Counter::default(),
            runs: Family::default(),
            step_duration: Family::new_with_constructor(duration_histogram),
            run_duration: Family::new_with_constructor(duration_histogram),
            alert_to_run_start: latency_histogram(),
            api_errors: Family::default(),
            reconcile_errors: Family::default(),
            notifications: Family::default(),
            events: Family::default(),
            webhook_requests: Family::default(),
            leader: Gauge::default(),
            runs_in_flight: Gauge::default(),
            plans_invalid: Gauge::default(),
        };
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register(
            "lifeboat_build_info",
            "Always 1; the label says which version of lifeboat is running",
            build_info,
        );
        registry.register(
            "lifeboat_leader",
            "1 while this replica holds the leader Lease (executes runs), else 0",
            inner.leader.clone(),
        );
        registry.register(
            "lifeboat_runs_in_flight",
            "RecoveryRuns started and not finished, as the leader's cache sees them",
            inner.runs_in_flight.clone(),
        );
        registry.register(
            "lifeboat_plans_invalid",
            "RecoveryPlans whose status says Invalid, as the leader's cache sees them",
            inner.plans_invalid.clone(),
        );
        registry.register(
            "lifeboat_webhook_requests",
            "Requests to the webhook receiver, by HTTP status code of the answer (401: bad token)",
            inner.webhook_requests.clone(),
        );
        registry.register(
            "lifeboat_alerts_received",
            "Alerts received, by source (alertmanager/<receiver>, kubectl, ...)",
            inner.alerts_received.clone(),
        );
        registry.register(
            "lifeboat_alerts_processed",
            "Alerts matched against plans, by outcome (Matched, NoMatchingPlan, Resolved, ...)",
            inner.alerts_processed.clone(),
        );
        registry.register(
            "lifeboat_runs_started",
            "RecoveryRuns whose first step started",
            inner.runs_started.clone(),
        );
        registry.register(
            "lifeboat_runs",
            "Finished RecoveryRuns, by outcome (Completed, Failed)",
            inner.runs.clone(),
        );
        registry.register(
            "lifeboat_step_duration_seconds",
            "Duration of run steps, by step type and outcome",
            inner.step_duration.clone(),
        );
        registry.register(
            "lifeboat_run_duration_seconds",
            "Duration of RecoveryRuns from start to finish, by outcome",
            inner.run_duration.clone(),
        );
        registry.register(
            "lifeboat_alert_to_run_start_seconds",
            "Latency from an alert being stored to the first step of its run starting",
            inner.alert_to_run_start.clone(),
        );
        registry.register(
            "lifeboat_api_errors",
            "Kubernetes API errors, by category (conflict, not_found, throttled, server, network, ...)",
            inner.api_errors.clone(),
        );
        registry.register(
            "lifeboat_reconcile_errors",
            "Reconcile errors, by controller and category",
            inner.reconcile_errors.clone(),
        );
        registry.register(
            "lifeboat_notifications",
            "Webhook notifications, by outcome (Delivered, Failed)",
            inner.notifications.clone(),
        );
        registry.register(
            "lifeboat_events",
            "Kubernetes Events, by outcome: Published, Failed (the API server refused it or did \
             not answer), Dropped (the publishing queue was full, as in an alert storm; a run's \
             status still records every step)",
            inner.events.clone(),
        );
        Metrics {
            inner: Arc::new(inner),
        }
    }

    /// One alert arrived from `source`.
    pub fn alert_received(&self, source: &str) {
        self.inner
            .alerts_received
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .inc();
    }

    /// One alert was matched against plans with `outcome`.
    pub fn alert_processed(&self, outcome: &str) {
        self.inner
            .alerts_processed
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A run's first step started `alert_to_start` after its alert was stored.
    pub fn run_started(&self, alert_to_start: Duration) {
        self.inner.runs_started.inc();
        self.inner
            .alert_to_run_start
            .observe(alert_to_start.as_secs_f64());
    }

    /// A run finished with `outcome` (`Completed` or `Failed`) after `duration`.
    pub fn run_finished(&self, outcome: &str, duration: Duration) {
        let labels = OutcomeLabels {
            outcome: outcome.to_string(),
        };
        self.inner.runs.get_or_create(&labels).inc();
        self.inner
            .run_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
    }

    /// A step of type `step_type` finished with `outcome` after `duration`.
    pub fn step_finished(&self, step_type: &str, outcome: &str, duration: Duration) {
        self.inner
            .step_duration
            .get_or_create(&StepLabels {
                step_type: step_type.to_string(),
                outcome: outcome.to_string(),
            })
            .observe(duration.as_secs_f64());
    }

    /// A Kubernetes API call failed; `category` classifies it.
    pub fn api_error(&self, category: &str) {
        self.inner
            .api_errors
            .get_or_create(&CategoryLabels {
                category: category.to_string(),
            })
            .inc();
    }

    /// A notification was delivered or given up on (`outcome`: Delivered, Failed).
    pub fn notification(&self, outcome: &str) {
        self.inner
            .notifications
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// A Kubernetes Event was published, failed or dropped (`outcome`: Published, Failed,
    /// Dropped); returns how many have had that outcome, this one included.
    pub fn event(&self, outcome: &str) -> u64 {
        self.inner
            .events
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc()
            + 1
    }

    /// The webhook receiver answered a request with HTTP status `code`.
    pub fn webhook_request(&self, code: u16) {
        self.inner
            .webhook_requests
            .get_or_create(&CodeLabels {
                code: code.to_string(),
            })
            .inc();
    }

    /// Whether this replica leads (holds the Lease) now.
    pub fn set_leader(&self, leading: bool) {
        self.inner.leader.set(i64::from(leading));
    }

    /// How many runs are in flight and how many plans are invalid, counted from the caches.
    pub fn set_cache_gauges(&self, runs_in_flight: usize, plans_invalid: usize) {
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.inner.runs_in_flight.set(as_i64(runs_in_flight));
        self.inner.plans_invalid.set(as_i64(plans_invalid));
    }

    /// A reconcile of `controller` failed; `category` classifies it.
    pub fn reconcile_error(&self, controller: &str, category: &str) {
        self.inner
            .reconcile_errors
            .get_or_create(&ReconcileLabels {
                controller: controller.to_string(),
                category: category.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn metrics_are_encoded_with_prefix_and_labels() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        m.alert_received("alertmanager/lifeboat");
        m.alert_received("alertmanager/lifeboat");
        m.alert_processed("Matched");
        m.run_started(Duration::from_millis(3));
        m.run_finished("Completed", Duration::from_millis(40));
        m.step_finished("patch", "Succeeded", Duration::from_millis(2));
        m.api_error("conflict");
        m.reconcile_error("run", "server");
        m.webhook_request(401);
        m.set_leader(true);
        m.set_cache_gauges(3, 1);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for expected in [
            "lifeboat_alerts_received_total{source=\"alertmanager/lifeboat\"} 2",
            "lifeboat_alerts_processed_total{outcome=\"Matched\"} 1",
            "lifeboat_runs_started_total 1",
            "lifeboat_runs_total{outcome=\"Completed\"} 1",
            "lifeboat_step_duration_seconds_count{step_type=\"patch\",outcome=\"Succeeded\"} 1",
            "lifeboat_run_duration_seconds_count{outcome=\"Completed\"} 1",
            "lifeboat_alert_to_run_start_seconds_count 1",
            "lifeboat_api_errors_total{category=\"conflict\"} 1",
            "lifeboat_reconcile_errors_total{controller=\"run\",category=\"server\"} 1",
            "lifeboat_webhook_requests_total{code=\"401\"} 1",
            "lifeboat_leader 1",
            "lifeboat_runs_in_flight 3",
            "lifeboat_plans_invalid 1",
            concat!(
                "lifeboat_build_info{version=\"",
                env!("CARGO_PKG_VERSION"),
                "\"} 1"
            ),
            // Run durations are counted up to hours (a Job step alone may take ten minutes).
            "lifeboat_run_duration_seconds_bucket{le=\"3276.8\",outcome=\"Completed\"} 1",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "not OpenMetrics text:\n{text}");
    }
}
