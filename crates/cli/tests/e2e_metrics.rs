//! `/metrics`, `/healthz` and `/readyz` of the real `lifeboat controller`: what a completed
//! and a failed run leave in the counters and histograms, and readiness following the
//! controllers' caches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lifeboat_api::RunPhase;
use lifeboat_operator::naming;
use serde_json::{Value, json};

const STARTS_AT: &str = "2024-05-01T10:00:00Z";

/// Plan `name` for alerts labelled `kind: <name>`: read the pod's image, then `steps`.
fn plan(name: &str, steps: Value) -> Value {
    let mut all = vec![
        json!({"type": "readField", "readField": {"apiVersion": "v1",
        "resource": "pods", "namespace": "default", "name": "my-pod",
        "fieldPath": "spec.containers[0].image", "outputKey": "podImage"}}),
    ];
    all.extend(steps.as_array().unwrap().iter().cloned());
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"alertLabels": {"kind": name}, "steps": all}})
}

fn job(outcome: &str) -> Value {
    json!({"type": "job", "job": {"template": {
        "metadata": {"annotations": {"sim.lifeboat.dev/outcome": outcome,
            "sim.lifeboat.dev/duration": "50ms"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}})
}

fn am_alert(kind: &str) -> Value {
    json!({"status": "firing", "labels": {"alertname": "AppDown", "kind": kind},
        "annotations": {}, "startsAt": STARTS_AT, "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph", "fingerprint": format!("f-{kind}")})
}

fn run_of(plan: &str) -> String {
    let alert = naming::received_alert_name("AppDown", &format!("f-{plan}"), STARTS_AT);
    naming::run_name(plan, &alert)
}

/// Scrapes until `sample` has `value` (metrics are updated just after the status write a
/// test waits for); returns that scrape.
async fn scrape_until(r: &Controller, sample: &str, value: f64) -> String {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let text = r.metrics().await;
        if metric_value(&text, sample) == Some(value) {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{sample} never reached {value}; metrics:\n{text}\nlog:\n{}",
            r.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_count_alerts_runs_steps_and_latency_of_a_completed_and_a_failed_run() {
    let cluster = Cluster::start("local").await;
    cluster.sim.apply_object(seed_pod()).unwrap();
    cluster
        .sim
        .apply_object(plan(
            "good",
            json!([
                {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods",
                    "namespace": "default", "name": "my-pod",
                    "override": {"fieldPath": "spec.containers[1].image",
                    "value": {"raw": "{{ .Values.podImage }}"}}}},
                job("Complete")
            ]),
        ))
        .unwrap();
    cluster
        .sim
        .apply_object(plan("bad", json!([job("Fail")])))
        .unwrap();
    let ctl = replica(
        &cluster,
        0,
        &["--alert-namespace", "default", "--no-leader-election"],
    )
    .await;

    assert_eq!(ctl.health_get("/healthz").await.0, 200);
    let before = ctl.metrics().await;
    assert_eq!(
        metric_value(&before, "lifeboat_runs_started_total"),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        metric_value(&before, "lifeboat_alert_to_run_start_seconds_count"),
        Some(0.0),
        "{before}"
    );

    let body = json!({"version": "4", "receiver": "pager", "status": "firing",
        "groupKey": "{}:{alertname=\"AppDown\"}", "truncatedAlerts": 0, "groupLabels": {},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example",
        "alerts": [am_alert("good"), am_alert("bad")]});
    let resp = reqwest::Client::new()
        .post(ctl.webhook_url("/webhook"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let good = cluster.wait_run_finished(&run_of("good"), &ctl).await;
    let bad = cluster.wait_run_finished(&run_of("bad"), &ctl).await;
    assert_eq!(good.status.unwrap().phase, RunPhase::Completed);
    assert_eq!(bad.status.unwrap().phase, RunPhase::Failed);

    scrape_until(&ctl, r#"lifeboat_runs_total{outcome="Completed"}"#, 1.0).await;
    let m = scrape_until(&ctl, r#"lifeboat_runs_total{outcome="Failed"}"#, 1.0).await;
    for (sample, want) in [
        (
            r#"lifeboat_alerts_received_total{source="alertmanager/pager"}"#,
            2.0,
        ),
        (r#"lifeboat_alerts_processed_total{outcome="Matched"}"#, 2.0),
        ("lifeboat_runs_started_total", 2.0),
        (r#"lifeboat_runs_total{outcome="Completed"}"#, 1.0),
        (r#"lifeboat_runs_total{outcome="Failed"}"#, 1.0),
        (
            r#"lifeboat_run_duration_seconds_count{outcome="Completed"}"#,
            1.0,
        ),
        (
            r#"lifeboat_run_duration_seconds_count{outcome="Failed"}"#,
            1.0,
        ),
        (
            r#"lifeboat_step_duration_seconds_count{step_type="readField",outcome="Succeeded"}"#,
            2.0,
        ),
        (
            r#"lifeboat_step_duration_seconds_count{step_type="patch",outcome="Succeeded"}"#,
            1.0,
        ),
        (
            r#"lifeboat_step_duration_seconds_count{step_type="job",outcome="Succeeded"}"#,
            1.0,
        ),
        (
            r#"lifeboat_step_duration_seconds_count{step_type="job",outcome="Failed"}"#,
            1.0,
        ),
        ("lifeboat_alert_to_run_start_seconds_count", 2.0),
    ] {
        assert_eq!(
            metric_value(&m, sample),
            Some(want),
            "{sample} should be {want}; metrics:\n{m}"
        );
    }
    // No other step outcome was recorded, and the histograms' buckets are cumulative up to
    // their count.
    let step_series = m
        .lines()
        .filter(|l| l.starts_with("lifeboat_step_duration_seconds_count{"))
        .count();
    assert_eq!(step_series, 4, "step series:\n{m}");
    assert_eq!(
        metric_value(
            &m,
            r#"lifeboat_alert_to_run_start_seconds_bucket{le="+Inf"}"#
        ),
        Some(2.0),
        "{m}"
    );
    assert!(
        metric_value(&m, "lifeboat_alert_to_run_start_seconds_sum").is_some_and(|s| s >= 0.0),
        "{m}"
    );
    let (status, body) = ctl.health_get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ctl.health_get("/healthz").await.0, 200);
    ctl.terminate().await;
}

#[tokio::test]
async fn readyz_is_503_until_the_controllers_caches_sync() {
    let cluster = Cluster::start("local").await;
    // The API server refuses connections: the caches cannot sync.
    cluster.sim.faults().set_unreachable(true);
    let ctl = replica(&cluster, 0, &["--no-leader-election"]).await;
    assert_eq!(
        ctl.health_get("/healthz").await.0,
        200,
        "liveness does not depend on the API server"
    );
    let (status, body) = ctl.health_get("/readyz").await;
    assert_eq!(
        (status, body.contains("controllers")),
        (503, true),
        "not ready while the caches cannot sync: {body}\n{}",
        ctl.log_text()
    );

    cluster.sim.faults().set_unreachable(false);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let (status, body) = ctl.health_get("/readyz").await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready once the API server is back: {status} {body}\n{}",
            ctl.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ctl.metrics().await.contains("lifeboat_runs_started_total"));
    ctl.terminate().await;
}

/// The gauges and counters an on-call engineer alerts on: which replica leads, runs in
/// flight, invalid plans, webhook requests by status code (401s visible) and the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_metrics_show_the_leader_runs_in_flight_invalid_plans_and_refused_webhooks() {
    let cluster = Cluster::start("local").await;
    cluster.sim.apply_object(seed_pod()).unwrap();
    cluster
        .sim
        .apply_object(plan(
            "waits",
            json!([{"type": "approval", "title": "On-call approves", "approval": {}}]),
        ))
        .unwrap();
    // Structurally fine, but its template names data that does not exist.
    cluster
        .sim
        .apply_object(plan(
            "broken",
            json!([{"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods",
                "namespace": "default", "name": "my-pod",
                "override": {"fieldPath": "spec.containers[0].image",
                "value": {"raw": "{{ .Nothing.here }}"}}}}]),
        ))
        .unwrap();
    let token = cluster.dir().join("webhook-token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let token_flag = token.to_str().unwrap();
    let flags = [
        "--alert-namespace",
        "default",
        "--webhook-token-file",
        token_flag,
    ];
    let a = replica(&cluster, 0, &flags).await;
    let b = replica(&cluster, 1, &flags).await;

    // Exactly one of the two replicas leads.
    let deadline = std::time::Instant::now() + DEADLINE;
    let (leader, standby) = loop {
        let (ma, mb) = (a.metrics().await, b.metrics().await);
        match (
            metric_value(&ma, "lifeboat_leader"),
            metric_value(&mb, "lifeboat_leader"),
        ) {
            (Some(1.0), Some(0.0)) => break (&a, &b),
            (Some(0.0), Some(1.0)) => break (&b, &a),
            _ => assert!(
                std::time::Instant::now() < deadline,
                "no single leader:\n{ma}\n{mb}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let version = format!(
        "lifeboat_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(metric_value(&standby.metrics().await, &version), Some(1.0));
    scrape_until(leader, "lifeboat_plans_invalid", 1.0).await;

    // A request with the wrong token is refused and counted; the right one is accepted.
    let body = json!({"version": "4", "receiver": "pager", "status": "firing",
        "groupKey": "{}:{alertname=\"AppDown\"}", "truncatedAlerts": 0, "groupLabels": {},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example",
        "alerts": [am_alert("waits")]});
    let http = reqwest::Client::new();
    for (bearer, want) in [("wrong", 401), ("s3cret", 200)] {
        let resp = http
            .post(standby.webhook_url("/webhook"))
            .bearer_auth(bearer)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{}", resp.text().await.unwrap());
    }
    let m = standby.metrics().await;
    assert_eq!(
        metric_value(&m, r#"lifeboat_webhook_requests_total{code="401"}"#),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric_value(&m, r#"lifeboat_webhook_requests_total{code="200"}"#),
        Some(1.0),
        "{m}"
    );

    // The run waits for approval: in flight until it is cancelled.
    scrape_until(leader, "lifeboat_runs_in_flight", 1.0).await;
    let runs: kube::Api<lifeboat_api::RecoveryRun> =
        kube::Api::namespaced(cluster.client(), "default");
    runs.patch(
        &run_of("waits"),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"cancel": true}})),
    )
    .await
    .unwrap();
    let done = cluster.wait_run_finished(&run_of("waits"), leader).await;
    assert_eq!(done.status.unwrap().phase, RunPhase::Cancelled);
    scrape_until(leader, "lifeboat_runs_in_flight", 0.0).await;
    a.terminate().await;
    b.terminate().await;
}
