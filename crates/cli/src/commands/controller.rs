//! `lifeboat controller`: the operator process (alert intake, plan validation, run
//! execution, webhook receiver, health and metrics).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lifeboat_operator::{ControllerConfig, LeaseTimings, WebhookConfig};
use tokio_util::sync::CancellationToken;

use super::EXIT_OK;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Namespace lifeboat runs in: cluster Secrets and the leader Lease live here.
    #[arg(long, env = "POD_NAMESPACE", default_value = "lifeboat-system")]
    pub namespace: String,
    /// Listen address of the Alertmanager webhook receiver.
    #[arg(long, default_value = "0.0.0.0:9095")]
    pub webhook_addr: SocketAddr,
    /// Do not serve the webhook receiver.
    #[arg(long)]
    pub no_webhook: bool,
    /// Namespace the receiver writes ReceivedAlerts to (default: --namespace).
    #[arg(long)]
    pub alert_namespace: Option<String>,
    /// A further namespace served at /webhook/<namespace> (repeatable).
    #[arg(long = "tenant-namespace", value_name = "NS")]
    pub tenant_namespaces: Vec<String>,
    /// File holding the bearer token Alertmanager must send (read once, trimmed).
    #[arg(long, value_name = "FILE")]
    pub webhook_token_file: Option<PathBuf>,
    /// TLS certificate (PEM) of the receiver; with --tls-key it serves HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the receiver.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that client certificates must chain to (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Largest accepted webhook body in bytes (413 beyond).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Listen address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub health_addr: SocketAddr,
    /// Run the controllers without electing a leader (a single replica).
    #[arg(long)]
    pub no_leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, default_value = "lifeboat-controller")]
    pub lease_name: String,
    /// How long a leader's Lease is honoured without renewal (`10s`, `1m`; whole seconds,
    /// from 1s to 24h): a replica that dies is replaced after this long. The leader renews
    /// every fifth of it (at most every 2 s) and stops executing if it cannot renew within
    /// 70 % of it.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = lease_duration_arg)]
    pub lease_duration: Duration,
    /// Identity of this replica in the Lease (default: the pod name from POD_NAME, else
    /// hostname-pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long a processed ReceivedAlert is kept before it is deleted (`0`: forever).
    /// Keep it longer than alerts fire: an alert re-sent after its deletion is processed
    /// again, and starts nothing only while its run is kept (the plan's history limits).
    #[arg(long, value_name = "DURATION", default_value = "168h", value_parser = super::duration_arg)]
    pub alert_retention: Duration,
    /// Write the bound addresses here as JSON once listening (for tests and scripts).
    #[arg(long, value_name = "FILE")]
    pub addr_file: Option<PathBuf>,
}

impl Args {
    /// The operator's configuration. Reads the token file, if any.
    pub fn to_config(&self) -> anyhow::Result<ControllerConfig> {
        let webhook = if self.no_webhook {
            None
        } else {
            let alert_ns = self.alert_namespace.as_deref().unwrap_or(&self.namespace);
            let mut w = WebhookConfig::new(self.webhook_addr, alert_ns);
            w.tenant_namespaces = self.tenant_namespaces.clone();
            w.bearer_token = match &self.webhook_token_file {
                Some(path) => {
                    let token = std::fs::read_to_string(path).with_context(|| {
                        format!("cannot read the webhook token file {}", path.display())
                    })?;
                    let token = token.trim().to_string();
                    if token.is_empty() {
                        anyhow::bail!("the webhook token file {} is empty", path.display());
                    }
                    Some(token)
                }
                None => None,
            };
            w.tls_cert = self.tls_cert.clone();
            w.tls_key = self.tls_key.clone();
            w.client_ca = self.client_ca.clone();
            w.max_body_bytes = self.max_body_bytes;
            Some(w)
        };
        Ok(ControllerConfig {
            namespace: self.namespace.clone(),
            webhook,
            health_addr: self.health_addr,
            leader_election: !self.no_leader_election,
            lease_name: self.lease_name.clone(),
            identity: self.identity.clone().unwrap_or_else(default_identity),
            addr_file: self.addr_file.clone(),
            alert_retention: Some(self.alert_retention).filter(|d| !d.is_zero()),
        })
    }

    /// Leader-election timings derived from `--lease-duration`.
    pub fn lease_timings(&self) -> LeaseTimings {
        LeaseTimings::for_lease(self.lease_duration)
    }
}

/// `--lease-duration`: a duration of whole seconds between 1s and 24h (a Lease counts in
/// seconds).
fn lease_duration_arg(s: &str) -> Result<Duration, String> {
    let d = super::duration_arg(s)?;
    if d.subsec_nanos() != 0 || d < Duration::from_secs(1) || d > Duration::from_secs(86_400) {
        return Err(format!("{s:?}: a whole number of seconds from 1s to 24h"));
    }
    Ok(d)
}

pub async fn run(args: Args, conn: &super::Connection) -> anyhow::Result<u8> {
    let config = args.to_config()?;
    let lease = args.lease_timings();
    let client = conn.client().await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    tracing::info!(
        namespace = %config.namespace,
        identity = %config.identity,
        leader_election = config.leader_election,
        "starting lifeboat controller"
    );
    lifeboat_operator::serve_with_lease(client, config, lease, shutdown)
        .await
        .context("the controller stopped with an error")?;
    Ok(EXIT_OK)
}

/// Cancels `token` on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
pub async fn cancel_on_signal(token: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received: shutting down"),
        r = tokio::signal::ctrl_c() => match r {
            Ok(()) => tracing::info!("SIGINT received: shutting down"),
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGINT");
                std::future::pending::<()>().await;
            }
        },
    }
    token.cancel();
}

/// `hostname-pid`: unique per replica, and recognisable in the Lease.
fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "lifeboat".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_map_onto_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "  s3cret\n").unwrap();
        let w = Wrapper::try_parse_from([
            "x",
            "--namespace",
            "ops",
            "--tenant-namespace",
            "team-a",
            "--tenant-namespace",
            "team-b",
            "--webhook-token-file",
            token.to_str().unwrap(),
            "--no-leader-election",
            "--identity",
            "me",
            "--max-body-bytes",
            "4096",
        ])
        .unwrap();
        let cfg = w.args.to_config().unwrap();
        assert_eq!(cfg.namespace, "ops");
        assert!(!cfg.leader_election);
        assert_eq!(cfg.identity, "me");
        assert_eq!(cfg.lease_name, "lifeboat-controller");
        assert_eq!(w.args.lease_timings(), LeaseTimings::default());
        assert_eq!(cfg.health_addr.to_string(), "0.0.0.0:8080");
        let wh = cfg.webhook.unwrap();
        assert_eq!(
            wh.default_namespace, "ops",
            "alert namespace defaults to --namespace"
        );
        assert_eq!(wh.tenant_namespaces, vec!["team-a", "team-b"]);
        assert_eq!(
            wh.bearer_token.as_deref(),
            Some("s3cret"),
            "token is trimmed"
        );
        assert_eq!(wh.max_body_bytes, 4096);
        assert_eq!(wh.addr.to_string(), "0.0.0.0:9095");
    }

    #[test]
    fn lease_duration_sets_the_election_timings() {
        let w = Wrapper::try_parse_from(["x", "--lease-duration", "3s"]).unwrap();
        assert_eq!(
            w.args.lease_timings(),
            LeaseTimings::for_lease(Duration::from_secs(3))
        );
        assert!(Wrapper::try_parse_from(["x", "--lease-duration", "0s"]).is_err());
        assert!(Wrapper::try_parse_from(["x", "--lease-duration", "1.5s"]).is_err());
        assert!(Wrapper::try_parse_from(["x", "--lease-duration", "3"]).is_err());
        let w = Wrapper::try_parse_from(["x", "--lease-duration", "1m30s"]).unwrap();
        assert_eq!(
            w.args.lease_timings(),
            LeaseTimings::for_lease(Duration::from_secs(90))
        );
    }

    #[test]
    fn no_webhook_disables_the_receiver() {
        let w = Wrapper::try_parse_from(["x", "--no-webhook"]).unwrap();
        assert!(w.args.to_config().unwrap().webhook.is_none());
    }
}
