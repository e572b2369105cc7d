//! Alertmanager webhook receiver.
//!
//! `POST /webhook` records the alerts of an Alertmanager notification (payload version 4)
//! as ReceivedAlerts in the default namespace; `POST /webhook/<namespace>` does so in a tenant
//! namespace enabled explicitly. See [`payload`] for validation and [`store`] for how alerts
//! are written idempotently. The reply is 200 only once every alert is durably recorded;
//! otherwise 5xx so Alertmanager retries.

pub mod payload;
pub mod server;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::telemetry::Metrics;

pub use payload::{PayloadError, WebhookPayload};
pub use server::Receiver;
pub use store::{AlertStore, Recorded, Summary};

/// How long in-flight notifications may take to finish once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Errors starting the receiver.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The TLS configuration is unusable.
    #[error("webhook TLS: {0}")]
    Tls(String),
    /// TLS was half configured.
    #[error("webhook TLS needs both a certificate and a key (--tls-cert and --tls-key)")]
    TlsIncomplete,
}

/// Starts the receiver on `cfg.addr` (HTTPS when a certificate and key are set, requiring
/// client certificates when a client CA is set) and returns the bound address once
/// listening. The server stops, letting in-flight requests finish, when `shutdown` is
/// cancelled.
pub async fn serve(
    client: kube::Client,
    cfg: WebhookConfig,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<SocketAddr, WebhookError> {
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key, cfg.client_ca.as_deref())?),
        (None, None) if cfg.client_ca.is_none() => None,
        _ => return Err(WebhookError::TlsIncomplete),
    };
    let addr = cfg.addr;
    let bind_err = |source| WebhookError::Bind { addr, source };
    let app = Receiver::new(client, &cfg, metrics).router();
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let bound = listener.local_addr().map_err(bind_err)?;
    match tls {
        Some(config) => {
            let handle = axum_server::Handle::new();
            let server = axum_server::tls_rustls::from_tcp_rustls(
                listener,
                axum_server::tls_rustls::RustlsConfig::from_config(config),
            )
            .map_err(bind_err)?
            .handle(handle.clone());
            tokio::spawn(async move {
                if let Err(e) = server.serve(app.into_make_service()).await {
                    tracing::error!(error = %e, "webhook server failed");
                }
            });
            tokio::spawn(async move {
                shutdown.cancelled().await;
                handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
            });
        }
        None => {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(bind_err)?;
            tokio::spawn(async move {
                let result = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await;
                if let Err(e) = result {
                    tracing::error!(error = %e, "webhook server failed");
                }
            });
        }
    }
    tracing::info!(
        addr = %bound,
        tls = cfg.tls_cert.is_some(),
        mtls = cfg.client_ca.is_some(),
        namespace = cfg.default_namespace,
        tenants = ?cfg.tenant_namespaces,
        "webhook receiver listening"
    );
    Ok(bound)
}
