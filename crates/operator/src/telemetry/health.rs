//! `/healthz`, `/readyz` and `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// Errors of the health server.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Readiness of the process: a set of named components (e.g. `webhook`, `controllers`), each
/// ready or not. The process is ready once every registered component is. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    components: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Readiness {
    /// No components yet: ready.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Registers `component` as not ready yet (no-op if it is already registered).
    pub fn require(&self, component: &str) {
        self.with(|c| {
            c.entry(component.to_string()).or_insert(false);
        });
    }

    /// Sets whether `component` is ready (registering it if needed).
    pub fn set(&self, component: &str, ready: bool) {
        self.with(|c| {
            c.insert(component.to_string(), ready);
        });
    }

    /// Marks `component` ready.
    pub fn set_ready(&self, component: &str) {
        self.set(component, true);
    }

    /// `Ok` when every component is ready, else the names of those that are not.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let not_ready: Vec<String> = self.with(|c| {
            c.iter()
                .filter(|(_, ready)| !**ready)
                .map(|(name, _)| name.clone())
                .collect()
        });
        if not_ready.is_empty() {
            Ok(())
        } else {
            Err(not_ready)
        }
    }

    /// Whether every component is ready.
    pub fn is_ready(&self) -> bool {
        self.check().is_ok()
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, bool>) -> R) -> R {
        // A panic while holding this lock cannot leave the map inconsistent: recover it.
        let mut guard = match self.components.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

#[derive(Clone)]
struct HealthState {
    registry: Arc<Registry>,
    ready: Readiness,
}

/// Router serving `/healthz`, `/readyz` and `/metrics`.
pub fn health_router(registry: Arc<Registry>, ready: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(HealthState { registry, ready })
}

/// Binds `addr` and serves the health endpoints until `shutdown` is cancelled. Returns the
/// bound address once listening.
pub async fn serve_health(
    addr: SocketAddr,
    registry: Arc<Registry>,
    ready: Readiness,
    shutdown: CancellationToken,
) -> Result<SocketAddr, HealthError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HealthError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HealthError::Bind { addr, source })?;
    let app = health_router(registry, ready);
    tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "health server failed");
        }
    });
    tracing::info!(addr = %bound, "health server listening");
    Ok(bound)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<HealthState>) -> Response {
    match state.ready.check() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(not_ready) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", not_ready.join(", ")),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<HealthState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::telemetry::Metrics;

    #[test]
    fn readiness_reports_components_not_ready() {
        let r = Readiness::new();
        assert!(r.is_ready());
        r.require("webhook");
        r.require("controllers");
        assert_eq!(
            r.check(),
            Err(vec!["controllers".to_string(), "webhook".to_string()])
        );
        r.set_ready("webhook");
        assert_eq!(r.check(), Err(vec!["controllers".to_string()]));
        r.set_ready("controllers");
        assert!(r.is_ready());
        r.require("controllers");
        assert!(r.is_ready(), "require must not reset a ready component");
    }

    #[tokio::test]
    async fn serves_healthz_readyz_and_metrics() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        m.alert_received("test");
        let ready = Readiness::new();
        ready.require("controllers");
        let shutdown = CancellationToken::new();
        let addr = serve_health(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(registry),
            ready.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let client = reqwest::Client::new();
        let base = format!("http://{addr}");

        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);

        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 503);
        let body = r.text().await.unwrap();
        assert!(body.contains("controllers"), "readyz body: {body}");

        ready.set_ready("controllers");
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(r.status(), 200);

        let r = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let ct = r.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("lifeboat_alerts_received_total{source=\"test\"} 1"),
            "{body}"
        );
        shutdown.cancel();
    }
}
