//! Recording validated alerts as ReceivedAlerts.
//!
//! Every write is idempotent thanks to the deterministic object name: a repeat, a regrouping
//! or an HA duplicate of a firing alert finds the existing object (409 AlreadyExists), and
//! marking an alert resolved twice leaves it as the first time.

use std::collections::BTreeMap;

use futures::{StreamExt, stream};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use lifeboat_api::{ReceivedAlert, ReceivedAlertSpec};
use serde_json::json;

use super::payload::{AlertStatus, ValidAlert};
use crate::api_errors::{self, ErrorClass};
use crate::telemetry::Metrics;
use crate::writes;

/// Alerts of one request written to the API concurrently.
pub const WRITE_CONCURRENCY: usize = 32;

/// What recording one alert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new ReceivedAlert was created (a firing alert seen for the first time).
    Created,
    /// The firing alert was already recorded: nothing new.
    Existing,
    /// The alert is (now) marked resolved.
    Resolved,
}

/// Counts reported to Alertmanager in the response body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub created: usize,
    pub existing: usize,
    pub resolved: usize,
}

/// An API write that failed; the request must be answered with a 5xx so it is retried.
#[derive(Debug, thiserror::Error)]
#[error("{action} ReceivedAlert {namespace}/{name}: {source}")]
pub struct StoreError {
    pub action: &'static str,
    pub namespace: String,
    pub name: String,
    #[source]
    pub source: kube::Error,
}

impl StoreError {
    /// Low-cardinality category of the failure (metrics label).
    pub fn category(&self) -> &'static str {
        api_errors::category(&self.source)
    }

    /// Whether retrying the same request can succeed without anyone changing anything
    /// (transient failures; a conflict, since every write here is idempotent). Otherwise
    /// the request is answered 500 rather than 503; Alertmanager retries both.
    pub fn is_transient(&self) -> bool {
        matches!(
            api_errors::classify(&self.source),
            ErrorClass::Transient | ErrorClass::Conflict
        )
    }
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

/// The ReceivedAlert recording `alert`.
pub fn received_alert(alert: &ValidAlert, namespace: &str, source: &str) -> ReceivedAlert {
    let mut labels = BTreeMap::new();
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        "lifeboat".to_string(),
    );
    let mut obj = ReceivedAlert::new(
        &alert.object_name(),
        ReceivedAlertSpec {
            labels: alert.labels.clone(),
            annotations: alert.annotations.clone(),
            starts_at: Some(time(alert.starts_at)),
            ends_at: alert.ends_at.map(time),
            fingerprint: Some(alert.fingerprint.clone()),
            generator_url: alert.generator_url.clone(),
            source: Some(source.to_string()),
        },
    );
    obj.metadata = ObjectMeta {
        name: Some(alert.object_name()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(
            lifeboat_api::ANNOTATION_RECEIVED_AT.to_string(),
            // Always six fractional digits, so the precision is visible even at .000000.
            format!("{:.6}", Timestamp::now()),
        )])),
        ..ObjectMeta::default()
    };
    obj
}

/// Writes ReceivedAlerts into one namespace.
#[derive(Clone)]
pub struct AlertStore {
    client: kube::Client,
    api: Api<ReceivedAlert>,
    namespace: String,
    metrics: Metrics,
}

impl AlertStore {
    pub fn new(client: kube::Client, namespace: &str, metrics: Metrics) -> Self {
        AlertStore {
            client: client.clone(),
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            metrics,
        }
    }

    fn fail(&self, action: &'static str, name: &str, source: kube::Error) -> StoreError {
        let e = StoreError {
            action,
            namespace: self.namespace.clone(),
            name: name.to_string(),
            source,
        };
        self.metrics.api_error(e.category());
        e
    }

    /// Records every alert (concurrently, bounded) and returns the counts once all are
    /// durably written, or the first failure after every write has finished.
    pub async fn record_all(
        &self,
        alerts: &[ValidAlert],
        source: &str,
    ) -> (Summary, Vec<StoreError>) {
        let results: Vec<Result<Recorded, StoreError>> = stream::iter(alerts.iter().cloned())
            .map(|alert| {
                let store = self.clone();
                let source = source.to_string();
                async move { store.record(&alert, &source).await }
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        let mut summary = Summary::default();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(Recorded::Created) => summary.created += 1,
                Ok(Recorded::Existing) => summary.existing += 1,
                Ok(Recorded::Resolved) => summary.resolved += 1,
                Err(e) => errors.push(e),
            }
        }
        (summary, errors)
    }

    /// Records one alert, retrying transient API failures (every step is idempotent)
    /// before giving up and letting Alertmanager retry the whole notification.
    pub async fn record(&self, alert: &ValidAlert, source: &str) -> Result<Recorded, StoreError> {
        api_errors::retry(
            || async {
                match alert.status {
                    AlertStatus::Firing => self.record_firing(alert, source).await,
                    AlertStatus::Resolved => self.record_resolved(alert, source).await,
                }
            },
            StoreError::is_transient,
            |e: &StoreError| Some(&e.source),
        )
        .await
    }

    async fn record_firing(
        &self,
        alert: &ValidAlert,
        source: &str,
    ) -> Result<Recorded, StoreError> {
        let obj = received_alert(alert, &self.namespace, source);
        let name = alert.object_name();
        let pp = PostParams::default();
        match writes::create(&self.client, self.api.resource_url(), &pp, &obj).await {
            Ok(_) => Ok(Recorded::Created),
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(Recorded::Existing),
            Err(e) => Err(self.fail("create", &name, e)),
        }
    }

    async fn record_resolved(
        &self,
        alert: &ValidAlert,
        source: &str,
    ) -> Result<Recorded, StoreError> {
        let name = alert.object_name();
        let now = Timestamp::now();
        // A resolved alert has ended by definition, by now at the latest: record when, even
        // if Alertmanager did not (an `endsAt` not in the future also tells the alert
        // controller it has ended, before the status below says so).
        let ends_at = alert.ends_at.map_or(now, |t| t.min(now));
        let existing = self
            .api
            .get_opt(&name)
            .await
            .map_err(|e| self.fail("get", &name, e))?;
        match existing {
            Some(obj) => {
                if obj.status.as_ref().is_some_and(|s| s.resolved) {
                    return Ok(Recorded::Resolved);
                }
                if obj.spec.ends_at.as_ref().map(|t| t.0) != Some(ends_at) {
                    let patch = json!({"spec": {"endsAt": time(ends_at)}});
                    self.api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| self.fail("patch", &name, e))?;
                }
            }
            None => {
                // Never seen firing (e.g. lifeboat was down): record it anyway so the history
                // is complete. `spec.endsAt` in the past tells the alert controller it has
                // ended before the status below says so.
                let mut resolved = alert.clone();
                resolved.ends_at = Some(ends_at);
                let obj = received_alert(&resolved, &self.namespace, source);
                match self.api.create(&PostParams::default(), &obj).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.is_already_exists() => {}
                    Err(e) => return Err(self.fail("create", &name, e)),
                }
            }
        }
        let patch = json!({"status": {"resolved": true, "resolvedAt": time(now)}});
        self.api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| self.fail("patch status", &name, e))?;
        Ok(Recorded::Resolved)
    }
}
