//! TLS (and mTLS) configuration of the receiver, with rustls and the ring provider.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::WebhookError;

/// The error of reading PEM `what` from `path`, worded for an operator.
fn pem_error(what: &str, path: &Path, e: pem::Error) -> WebhookError {
    WebhookError::Tls(match e {
        pem::Error::Io(e) => format!("cannot read {}: {e}", path.display()),
        pem::Error::NoItemsFound => format!("no {what} found in {}", path.display()),
        e => format!("invalid PEM in {}: {e}", path.display()),
    })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, WebhookError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("certificate", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", path, e))?;
    if certs.is_empty() {
        return Err(pem_error("certificate", path, pem::Error::NoItemsFound));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, WebhookError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error("private key", path, e))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn message(r: Result<Arc<rustls::ServerConfig>, WebhookError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unreadable_or_empty_pem_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a PEM file\n").unwrap();
        let m = message(server_config(&missing, &missing, None));
        assert!(
            m.contains("cannot read") && m.contains("missing.pem"),
            "{m}"
        );
        let m = message(server_config(&empty, &empty, None));
        assert!(
            m.contains("no certificate found") && m.contains("empty.pem"),
            "{m}"
        );
    }
}
