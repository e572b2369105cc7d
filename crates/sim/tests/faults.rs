//! Every fault knob, observed by a client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{api_error, raw, start, wait_for};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn error_rate_gives_5xx_status_bodies() {
    let (cluster, client) = start("errors").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cluster.faults().set_error_rate(Some("list"), 1.0);
    let status = api_error(
        cms.list(&ListParams::default()).await,
        "list under error rate 1.0",
    );
    assert!(status.code == 500 || status.code == 503, "5xx: {status:?}");
    assert!(
        (status.code == 500 && status.reason == "InternalError")
            || (status.code == 503 && status.reason == "ServiceUnavailable"),
        "reason matches code: {status:?}"
    );
    // Only the chosen verb fails.
    cms.create(&PostParams::default(), &cm("c"))
        .await
        .expect("create is unaffected");
    cluster.faults().set_error_rate(Some("list"), 0.0);
    cms.list(&ListParams::default())
        .await
        .expect("list works again");
    cluster.faults().set_error_rate(None, 1.0);
    assert!(
        cms.get("c").await.is_err(),
        "every verb fails with a global rate"
    );
    cluster.faults().clear();
    cms.get("c").await.expect("clear turns faults off");
}

#[tokio::test]
async fn throttling_gives_429_with_retry_after() {
    let (cluster, _client) = start("throttle").await;
    cluster.faults().set_throttle_rate(1.0, 7);
    let (code, body) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "",
        b"",
    )
    .await;
    assert_eq!(code, 429);
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(body["details"]["retryAfterSeconds"], 7);
    // The header, as a client sees it.
    let addr = cluster.url().trim_start_matches("http://").to_string();
    let head = raw_head(&addr, "/api/v1/namespaces/default/configmaps").await;
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 7"),
        "Retry-After header: {head}"
    );
}

async fn raw_head(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n")
        .map(|(h, _)| h.to_string())
        .unwrap_or(out)
}

#[tokio::test]
async fn latency_delays_requests() {
    let (cluster, client) = start("latency").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cluster.faults().set_latency(Duration::from_millis(300));
    let t = Instant::now();
    cms.list(&ListParams::default()).await.unwrap();
    // The delay is injected, so it is a lower bound, not a performance assertion.
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "request took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn status_conflicts_on_status_writes_only() {
    let (cluster, client) = start("status-conflict").await;
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client, "default");
    let j = serde_json::from_value(json!({
        "metadata": {"name": "j", "annotations": {"sim.lifeboat.dev/duration": "1h"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}},
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &j).await.unwrap();
    cluster.faults().set_status_conflict_rate(1.0);
    let status = api_error(
        jobs.patch_status(
            "j",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"active": 1}})),
        )
        .await,
        "status write under conflict rate",
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    jobs.patch(
        "j",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
    )
    .await
    .expect("main resource writes are unaffected");
}

#[tokio::test]
async fn unreachable_cluster_refuses_then_comes_back_on_the_same_port() {
    let (cluster, client) = start("outage").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    cluster.faults().set_unreachable(true);
    let addr = cluster.url().trim_start_matches("http://").to_string();
    wait_for("port refuses connections", Duration::from_secs(5), || {
        let addr = addr.clone();
        async move {
            tokio::net::TcpStream::connect(&addr)
                .await
                .is_err()
                .then_some(())
        }
    })
    .await;
    let err = cms
        .get("before")
        .await
        .expect_err("no answer while unreachable");
    assert!(
        !matches!(err, kube::Error::Api(_)),
        "an outage is not an API error: {err:?}"
    );

    cluster.faults().set_unreachable(false);
    let got = wait_for(
        "cluster back on the same port",
        Duration::from_secs(5),
        || {
            let cms = cms.clone();
            async move { cms.get("before").await.ok() }
        },
    )
    .await;
    assert_eq!(
        got.metadata.name.as_deref(),
        Some("before"),
        "state survives the outage"
    );
}

#[tokio::test]
async fn dropped_watches_end_streams() {
    let (cluster, _client) = start("dropwatch").await;
    cluster
        .faults()
        .drop_watches_after(Duration::from_millis(200));
    let t = Instant::now();
    // Without the fault this watch would stay open for an hour.
    let (code, _) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=3600",
        "",
        b"",
    )
    .await;
    assert_eq!(code, 200);
    assert!(t.elapsed() < Duration::from_secs(3600), "the stream ended");
}
