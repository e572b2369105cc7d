//! The webhook over HTTPS, and with mutual TLS: certificates made for the test by a throwaway
//! CA (with the `openssl` command line).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/webhook_harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::{Controller, Env, NS, Opts, TOKEN, am_alert, am_payload, write_file};
use serde_json::json;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA `name` (`name.crt`, `name.key` in `dir`).
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A leaf certificate `name` signed by CA `ca` with the given extensions.
fn leaf(dir: &Path, ca: &str, name: &str, extensions: &str) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    write_file(dir, &format!("{name}.ext"), extensions);
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
    (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    )
}

struct Pki {
    server: (PathBuf, PathBuf),
    server_ca: PathBuf,
    client_ca: PathBuf,
    client: reqwest::Identity,
    rogue: reqwest::Identity,
}

fn identity(cert: &Path, key: &Path) -> reqwest::Identity {
    let mut pem = std::fs::read(cert).unwrap();
    pem.extend(std::fs::read(key).unwrap());
    reqwest::Identity::from_pem(&pem).unwrap()
}

fn pki(dir: &Path) -> Pki {
    ca(dir, "server-ca");
    ca(dir, "client-ca");
    ca(dir, "rogue-ca");
    let server = leaf(
        dir,
        "server-ca",
        "webhook",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    let client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
    let (cc, ck) = leaf(dir, "client-ca", "alertmanager", client_ext);
    let (rc, rk) = leaf(dir, "rogue-ca", "intruder", client_ext);
    Pki {
        server,
        server_ca: dir.join("server-ca.crt"),
        client_ca: dir.join("client-ca.crt"),
        client: identity(&cc, &ck),
        rogue: identity(&rc, &rk),
    }
}

fn https_client(pki: &Pki, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.server_ca).unwrap()).unwrap();
    // A bound on every request: a server that neither answers nor refuses is a failure
    // (reported as a timeout), never a hang.
    let mut b = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    if let Some(id) = identity {
        b = b.identity(id);
    }
    b.build().unwrap()
}

fn payload(fp: &str) -> serde_json::Value {
    am_payload(
        "lifeboat",
        vec![am_alert(
            "firing",
            &[("alertname", "TlsTest"), ("fp", fp)],
            "2024-05-01T10:00:00Z",
            Some(fp),
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_serves_https() {
    let env = Env::start(&[]).await;
    let pki = pki(env.dir());
    let ctl = Controller::start(
        &env,
        &Opts {
            tls: Some(pki.server.clone()),
            ..Opts::with_token()
        },
    )
    .await;
    let url = format!("https://127.0.0.1:{}/webhook", ctl.webhook_addr().port());
    let resp = https_client(&pki, None)
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&payload("dddd000000000001"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["created"],
        json!(1)
    );

    let plain = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/webhook",
            ctl.webhook_addr().port()
        ))
        .bearer_auth(TOKEN)
        .json(&payload("dddd000000000002"))
        .send()
        .await;
    assert!(
        !plain.as_ref().is_ok_and(|r| r.status().is_success()),
        "plain HTTP must not be served on the TLS port: {plain:?}"
    );
    assert_eq!(env.alerts(NS).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_rejects_clients_without_a_certificate_from_the_ca() {
    let env = Env::start(&[]).await;
    let pki = pki(env.dir());
    let ctl = Controller::start(
        &env,
        &Opts {
            tls: Some(pki.server.clone()),
            client_ca: Some(pki.client_ca.clone()),
            ..Opts::with_token()
        },
    )
    .await;
    let url = format!("https://127.0.0.1:{}/webhook", ctl.webhook_addr().port());

    let anonymous = https_client(&pki, None)
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&payload("eeee000000000001"))
        .send()
        .await;
    assert!(
        anonymous.as_ref().is_err_and(|e| !e.is_timeout()),
        "no client certificate must fail the handshake: {anonymous:?}"
    );

    let rogue = https_client(&pki, Some(pki.rogue.clone()))
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&payload("eeee000000000002"))
        .send()
        .await;
    assert!(
        rogue.as_ref().is_err_and(|e| !e.is_timeout()),
        "a certificate from another CA must fail the handshake: {rogue:?}"
    );
    assert!(
        env.alerts(NS).await.is_empty(),
        "a rejected client wrote something"
    );

    let resp = https_client(&pki, Some(pki.client.clone()))
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&payload("eeee000000000003"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(env.alerts(NS).await.len(), 1);
}
