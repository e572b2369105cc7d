//! HTTP handling of Alertmanager notifications: authentication, routing to a namespace,
//! body limits, parsing and validation, then recording.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::payload::WebhookPayload;
use super::store::{AlertStore, Summary};
use crate::config::WebhookConfig;
use crate::telemetry::Metrics;

/// Shared state of the receiver.
pub struct Receiver {
    /// SHA-256 of the expected bearer token: compared in constant time, and the token itself
    /// is not kept around where a debug print could reveal it.
    token_hash: Option<[u8; 32]>,
    default_namespace: String,
    /// One store per served namespace (default + enabled tenants).
    stores: BTreeMap<String, AlertStore>,
    max_body_bytes: usize,
    metrics: Metrics,
}

/// Bytes of an oversized body read and thrown away before answering 413: a client still
/// sending when the server closes the connection would get a reset instead of the answer.
const DRAIN_LIMIT: usize = 64 << 20;
/// How long reading and throwing away an oversized body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl Receiver {
    pub fn new(client: kube::Client, cfg: &WebhookConfig, metrics: Metrics) -> Self {
        let mut stores = BTreeMap::new();
        for ns in std::iter::once(&cfg.default_namespace).chain(&cfg.tenant_namespaces) {
            stores.insert(
                ns.clone(),
                AlertStore::new(client.clone(), ns, metrics.clone()),
            );
        }
        Receiver {
            token_hash: cfg.bearer_token.as_deref().map(|t| sha256(t.as_bytes())),
            default_namespace: cfg.default_namespace.clone(),
            stores,
            max_body_bytes: cfg.max_body_bytes,
            metrics,
        }
    }

    /// The router: `POST /webhook` (default namespace), `POST /webhook/{namespace}`.
    /// Every answer, including 404 and 405 for other paths and methods, is counted by
    /// status code.
    pub fn router(self) -> Router {
        let metrics = self.metrics.clone();
        Router::new()
            .route("/webhook", post(default_namespace))
            .route("/webhook/{namespace}", post(tenant_namespace))
            .with_state(Arc::new(self))
            .layer(axum::middleware::from_fn_with_state(metrics, count_request))
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token_hash else {
            return true;
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        let Some(token) = value
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
            .and_then(|_| value.get(7..))
        else {
            return false;
        };
        // Equal-length digests: the comparison time depends on neither token's content nor length.
        bool::from(sha256(token).ct_eq(expected))
    }
}

/// An error reply: status plus `{"error": message}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// Why a request body could not be read.
enum BodyError {
    /// Longer than the limit (413).
    TooLarge,
    /// The connection failed while reading.
    Read(String),
}

/// Reads the body, at most `max` bytes. Past that, the rest is read and thrown away (up to
/// [`DRAIN_LIMIT`] bytes, for at most [`DRAIN_TIMEOUT`]) so the client gets the 413 answer.
/// Only called once the request is authenticated.
async fn read_body(body: Body, max: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        let seen = buf.len().saturating_add(chunk.len());
        if seen > max {
            drop(buf);
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, async move {
                let mut seen = seen;
                while seen < DRAIN_LIMIT {
                    match stream.next().await {
                        Some(Ok(c)) => seen = seen.saturating_add(c.len()),
                        _ => break,
                    }
                }
            })
            .await;
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

async fn count_request(
    State(metrics): State<Metrics>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    metrics.webhook_request(response.status().as_u16());
    response
}

async fn default_namespace(
    State(rx): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ns = rx.default_namespace.clone();
    handle(rx, ns, headers, body).await
}

async fn tenant_namespace(
    State(rx): State<Arc<Receiver>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(rx, namespace, headers, body).await
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

async fn handle(rx: Arc<Receiver>, namespace: String, headers: HeaderMap, body: Body) -> Response {
    if !rx.authorized(&headers) {
        tracing::warn!(
            namespace,
            "webhook request rejected: missing or wrong bearer token"
        );
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"lifeboat\""),
        );
        return r;
    }
    let Some(store) = rx.stores.get(&namespace) else {
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "namespace {namespace:?} is not served by this receiver (enable it with --tenant-namespace {namespace})"
            ),
        );
    };
    if !is_json(&headers) {
        return error(
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/json",
        );
    }
    let body = match read_body(body, rx.max_body_bytes).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {} bytes", rx.max_body_bytes),
            );
        }
        Err(BodyError::Read(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read request body: {e}"),
            );
        }
    };
    let payload = match WebhookPayload::from_json(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let valid = match payload.validate() {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let source = if valid.receiver.is_empty() {
        "alertmanager".to_string()
    } else {
        format!("alertmanager/{}", valid.receiver)
    };
    for _ in &valid.alerts {
        rx.metrics.alert_received(&source);
    }
    let (summary, errors) = store.record_all(&valid.alerts, &source).await;
    if let Some(first) = errors.first() {
        let status = if errors.iter().all(|e| e.is_transient()) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        tracing::warn!(
            namespace,
            failed = errors.len(),
            alerts = valid.alerts.len(),
            error = %first,
            "webhook notification not fully recorded; Alertmanager will retry"
        );
        return (
            status,
            axum::Json(json!({
                "error": format!("{} of {} alerts not recorded: {first}", errors.len(), valid.alerts.len()),
                "created": summary.created,
                "existing": summary.existing,
                "resolved": summary.resolved,
            })),
        )
            .into_response();
    }
    tracing::info!(
        namespace,
        source,
        created = summary.created,
        existing = summary.existing,
        resolved = summary.resolved,
        "webhook notification recorded"
    );
    ok(summary)
}

fn ok(summary: Summary) -> Response {
    (StatusCode::OK, axum::Json(summary)).into_response()
}
