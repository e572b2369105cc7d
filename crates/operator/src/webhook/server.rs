//! HTTP handling of Alertmanager notifications: authentication, routing to a namespace,
//! body limits, parsing and validation, then recording.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
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
    pub fn router(self) -> Router {
        Router::new()
            .route("/webhook", post(default_namespace))
            .route("/webhook/{namespace}", post(tenant_namespace))
            .layer(DefaultBodyLimit::max(self.max_body_bytes))
            .with_state(Arc::new(self))
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

/// The body as read under the [`DefaultBodyLimit`]; a rejection says why it could not be
/// (too large → 413). Authentication is still checked before the body is looked at.
type BodyResult = Result<Bytes, BytesRejection>;

async fn default_namespace(
    State(rx): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: BodyResult,
) -> Response {
    let ns = rx.default_namespace.clone();
    handle(rx, ns, headers, body).await
}

async fn tenant_namespace(
    State(rx): State<Arc<Receiver>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: BodyResult,
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

async fn handle(
    rx: Arc<Receiver>,
    namespace: String,
    headers: HeaderMap,
    body: BodyResult,
) -> Response {
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
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("request body larger than {} bytes", rx.max_body_bytes)
            } else {
                format!("cannot read request body: {}", rejection.body_text())
            };
            return error(status, message);
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
