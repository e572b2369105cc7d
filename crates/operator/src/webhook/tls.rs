//! TLS (and mTLS) configuration of the receiver, with rustls and the ring provider.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::WebhookError;

fn open(path: &Path) -> Result<BufReader<File>, WebhookError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| WebhookError::Tls(format!("cannot read {}: {e}", path.display())))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, WebhookError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| WebhookError::Tls(format!("invalid PEM in {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(WebhookError::Tls(format!(
            "no certificate found in {}",
            path.display()
        )));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, WebhookError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|e| WebhookError::Tls(format!("invalid PEM in {}: {e}", path.display())))?
        .ok_or_else(|| WebhookError::Tls(format!("no private key found in {}", path.display())))
}

/// Server configuration from a certificate chain and key, requiring client certificates that
/// chain to `client_ca` when given (rejected at handshake otherwise).
pub fn server_config(
    cert: &Path,
    key_path: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(e.to_string()))?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots.add(c).map_err(|e| {
                    WebhookError::Tls(format!("invalid CA certificate in {}: {e}", ca.display()))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| WebhookError::Tls(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs(cert)?, key(key_path)?)
        .map_err(|e| WebhookError::Tls(format!("certificate/key mismatch or unsupported: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
