//! Configuration of `lifeboat controller`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `lifeboat controller` needs, as parsed from its flags.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Namespace lifeboat runs in: cluster Secrets and its Lease live here.
    pub namespace: String,
    /// Webhook receiver settings; `None` disables the receiver.
    pub webhook: Option<WebhookConfig>,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub health_addr: SocketAddr,
    /// Whether to elect a leader on a Lease before running controllers.
    pub leader_election: bool,
    /// Name of the Lease used for leader election.
    pub lease_name: String,
    /// Identity of this replica in the Lease (defaults to hostname + pid).
    pub identity: String,
    /// When set, the bound addresses are written here as JSON
    /// (`{"webhook":"127.0.0.1:p","health":"127.0.0.1:q"}`) once listening.
    pub addr_file: Option<PathBuf>,
    /// How long a processed ReceivedAlert is kept before it is deleted; `None` keeps them.
    /// Deleting one never starts its recovery again: a run's name derives from its plan and
    /// alert, so an alert re-sent after deletion finds its run (while the plan's history
    /// limits keep that run).
    pub alert_retention: Option<std::time::Duration>,
}

/// Settings of the Alertmanager webhook receiver.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Namespace ReceivedAlerts from `/webhook` (or `/api/v1/alerts`) are written to.
    pub default_namespace: String,
    /// Further namespaces served at `/webhook/<namespace>`, each enabled explicitly.
    pub tenant_namespaces: Vec<String>,
    /// Bearer token required from Alertmanager, if any (never logged).
    pub bearer_token: Option<String>,
    /// TLS certificate and key (PEM); when set, the receiver serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to: enables mTLS.
    pub client_ca: Option<PathBuf>,
    /// Largest accepted request body in bytes (413 beyond).
    pub max_body_bytes: usize,
}

impl WebhookConfig {
    /// Defaults for a receiver on `addr` writing into `namespace`.
    pub fn new(addr: SocketAddr, namespace: &str) -> Self {
        WebhookConfig {
            addr,
            default_namespace: namespace.to_string(),
            tenant_namespaces: Vec::new(),
            bearer_token: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            max_body_bytes: 1024 * 1024,
        }
    }
}
