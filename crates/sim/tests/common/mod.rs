//! Shared helpers of the simulator's API tests: a cluster and a `kube::Client` built from
//! its kubeconfig.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use lifeboat_sim::SimCluster;

/// A `kube::Config` from the cluster's kubeconfig.
pub async fn config_for(cluster: &SimCluster) -> kube::Config {
    let kc = Kubeconfig::from_yaml(&cluster.kubeconfig_yaml()).expect("kubeconfig parses");
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable")
}

/// A client for the cluster, as cluster-admin.
pub async fn client_for(cluster: &SimCluster) -> Client {
    Client::try_from(config_for(cluster).await).expect("client builds")
}

/// A client impersonating `user` (and groups).
pub async fn client_as(cluster: &SimCluster, user: &str, groups: &[&str]) -> Client {
    let mut cfg = config_for(cluster).await;
    cfg.auth_info.impersonate = Some(user.to_string());
    if !groups.is_empty() {
        cfg.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    Client::try_from(cfg).expect("client builds")
}

/// A `kube::Config` that authenticates with the bearer `token` (a ServiceAccount's, from a
/// TokenRequest) instead of the kubeconfig's admin token.
pub async fn config_with_token(cluster: &SimCluster, token: &str) -> kube::Config {
    let admin = format!("token: {}\n", lifeboat_sim::authn::ADMIN_TOKEN);
    let yaml = cluster.kubeconfig_yaml();
    assert!(yaml.contains(&admin), "kubeconfig carries the admin token");
    let kc = Kubeconfig::from_yaml(&yaml.replace(&admin, &format!("token: {token}\n")))
        .expect("kubeconfig parses");
    kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable")
}

/// A client authenticating with the bearer `token`.
pub async fn client_with_token(cluster: &SimCluster, token: &str) -> Client {
    Client::try_from(config_with_token(cluster, token).await).expect("client builds")
}

/// A fresh cluster and an admin client.
pub async fn start(name: &str) -> (SimCluster, Client) {
    let cluster = SimCluster::start(name).await.expect("cluster starts");
    let client = client_for(&cluster).await;
    (cluster, client)
}

/// Poll `f` until it returns `Some`, or panic after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The API status of a failed request, or a panic describing what happened instead.
pub fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>, what: &str) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("{what}: expected an API error, got {other:?}"),
    }
}

/// Raw HTTP request to the cluster (for malformed bodies), returning (status, body JSON).
pub async fn raw(
    cluster: &SimCluster,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = cluster.url().trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read response");
    let text = String::from_utf8_lossy(&out).to_string();
    let code: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let (headers, rest) = text.split_once("\r\n\r\n").expect("headers end");
    let body = if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // Minimal chunked decoding.
        let mut out = String::new();
        let mut r = rest;
        while let Some((len, tail)) = r.split_once("\r\n") {
            let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            r = &tail[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    (code, json)
}
