//! The Alertmanager webhook of the real `lifeboat controller` against a simulator cluster:
//! what gets recorded, what is idempotent, and what is rejected (with nothing written).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/webhook_harness.rs"]
mod harness;

use std::time::Duration;

use harness::{Controller, Env, NS, Opts, TOKEN, am_alert, am_payload, post, wait_for};
use lifeboat_operator::naming::received_alert_name;
use serde_json::{Value, json};

const T1: &str = "2024-05-01T10:00:00.123Z";
const T2: &str = "2024-05-01T10:05:00Z";

fn three_alerts() -> Vec<Value> {
    vec![
        am_alert(
            "firing",
            &[
                ("alertname", "DatabaseDown"),
                ("app", "db"),
                ("severity", "critical"),
            ],
            T1,
            Some("aaaa000000000001"),
        ),
        am_alert(
            "firing",
            &[
                ("alertname", "DatabaseDown"),
                ("app", "db2"),
                ("severity", "critical"),
            ],
            T1,
            Some("aaaa000000000002"),
        ),
        am_alert(
            "firing",
            &[
                ("alertname", "DiskFull"),
                ("app", "db"),
                ("severity", "warning"),
            ],
            T2,
            Some("aaaa000000000003"),
        ),
    ]
}

/// What identifies each stored object and what the webhook wrote into it (the alert
/// controller may update the status, so resourceVersions are no use here).
fn identities(alerts: &[lifeboat_api::ReceivedAlert]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a.metadata.name.clone().unwrap(),
                a.metadata.uid.clone().unwrap(),
                serde_json::to_string(&a.spec).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alerts_are_recorded_once_whatever_the_grouping() {
    let env = Env::start(&[]).await;
    let ctl = Controller::start(&env, &Opts::with_token()).await;
    let http = reqwest::Client::new();
    let url = ctl.url("/webhook");

    let (status, body) = post(
        &http,
        &url,
        Some(TOKEN),
        &am_payload("lifeboat", three_alerts()),
    )
    .await;
    assert_eq!(status, 200, "first delivery: {body}");
    assert_eq!(body, json!({"created": 3, "existing": 0, "resolved": 0}));

    let stored = env.alerts(NS).await;
    assert_eq!(stored.len(), 3, "one ReceivedAlert per alert: {stored:?}");
    let expected_name = received_alert_name("DatabaseDown", "aaaa000000000001", T1);
    let a = stored
        .iter()
        .find(|a| a.metadata.name.as_deref() == Some(expected_name.as_str()))
        .unwrap_or_else(|| panic!("no ReceivedAlert named {expected_name}: {stored:?}"));
    assert_eq!(a.spec.labels["app"], "db");
    assert_eq!(a.spec.labels["severity"], "critical");
    assert_eq!(a.spec.annotations["summary"], "test alert");
    assert_eq!(
        a.spec.annotations["description"], "a \"quoted\" value\nwith a newline",
        "annotations must be stored verbatim"
    );
    assert_eq!(a.spec.fingerprint.as_deref(), Some("aaaa000000000001"));
    assert_eq!(a.spec.source.as_deref(), Some("alertmanager/lifeboat"));
    let received_at = a
        .metadata
        .annotations
        .as_ref()
        .and_then(|m| m.get(lifeboat_api::ANNOTATION_RECEIVED_AT))
        .expect("the receive time is recorded");
    assert!(
        received_at.parse::<jiff::Timestamp>().is_ok() && received_at.contains('.'),
        "received-at is an RFC 3339 time with sub-second precision, got {received_at}"
    );
    assert_eq!(
        a.spec.generator_url.as_deref(),
        Some("http://prometheus.example/graph?g0.expr=up")
    );
    assert_eq!(
        a.spec.starts_at.as_ref().map(|t| t.0.to_string()),
        Some("2024-05-01T10:00:00Z".to_string()),
        "startsAt (seconds precision as Kubernetes stores it)"
    );
    assert_eq!(
        a.spec.ends_at, None,
        "Alertmanager's zero endsAt must not be stored"
    );
    let before = identities(&stored);

    // Alertmanager's repeat: exactly the same notification.
    let (status, body) = post(
        &http,
        &url,
        Some(TOKEN),
        &am_payload("lifeboat", three_alerts()),
    )
    .await;
    assert_eq!(status, 200, "repeat: {body}");
    assert_eq!(body, json!({"created": 0, "existing": 3, "resolved": 0}));

    // Regrouped: the same alerts split over two notifications, in another order, by another
    // receiver of an HA pair.
    let mut alerts = three_alerts();
    alerts.reverse();
    let second = alerts.split_off(1);
    for part in [alerts, second] {
        let n = part.len();
        let (status, body) = post(&http, &url, Some(TOKEN), &am_payload("lifeboat", part)).await;
        assert_eq!(status, 200, "regrouped: {body}");
        assert_eq!(body, json!({"created": 0, "existing": n, "resolved": 0}));
    }
    let after = identities(&env.alerts(NS).await);
    assert_eq!(before, after, "repeats and regroupings must write nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_fingerprint_is_computed_from_the_labels() {
    let env = Env::start(&[]).await;
    let ctl = Controller::start(&env, &Opts::default()).await;
    let http = reqwest::Client::new();
    let a = am_alert(
        "firing",
        &[("alertname", "X"), ("b", "2"), ("a", "1")],
        T1,
        None,
    );
    let b = am_alert(
        "firing",
        &[("a", "1"), ("alertname", "X"), ("b", "2")],
        T1,
        None,
    );
    let (status, body) = post(&http, &ctl.url("/webhook"), None, &am_payload("r", vec![a])).await;
    assert_eq!((status, &body["created"]), (200, &json!(1)), "{body}");
    let (status, body) = post(&http, &ctl.url("/webhook"), None, &am_payload("r", vec![b])).await;
    assert_eq!(
        (status, &body["existing"]),
        (200, &json!(1)),
        "same labels in another order: {body}"
    );
    let stored = env.alerts(NS).await;
    assert_eq!(stored.len(), 1);
    let fp = stored[0].spec.fingerprint.clone().unwrap();
    assert_eq!(
        fp.len(),
        16,
        "fingerprint {fp} must look like Alertmanager's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_alerts_are_marked_resolved_and_recorded_when_unseen() {
    let env = Env::start(&[]).await;
    let ctl = Controller::start(&env, &Opts::with_token()).await;
    let http = reqwest::Client::new();
    let url = ctl.url("/webhook");
    let labels = [("alertname", "DatabaseDown"), ("app", "db")];

    let firing = am_alert("firing", &labels, T1, Some("bbbb000000000001"));
    let (status, body) = post(
        &http,
        &url,
        Some(TOKEN),
        &am_payload("lifeboat", vec![firing]),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let mut resolved = am_alert("resolved", &labels, T1, Some("bbbb000000000001"));
    resolved["endsAt"] = json!("2024-05-01T10:30:00Z");
    // Never seen firing (e.g. delivered while lifeboat was down).
    let unseen = am_alert(
        "resolved",
        &[("alertname", "DiskFull"), ("app", "db")],
        T2,
        Some("bbbb000000000002"),
    );
    let payload = am_payload("lifeboat", vec![resolved.clone(), unseen]);
    let (status, body) = post(&http, &url, Some(TOKEN), &payload).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"created": 0, "existing": 0, "resolved": 2}));

    let api = env.alerts_api(NS);
    for (alertname, fp, starts) in [
        ("DatabaseDown", "bbbb000000000001", T1),
        ("DiskFull", "bbbb000000000002", T2),
    ] {
        let name = received_alert_name(alertname, fp, starts);
        let a = api.get(&name).await.unwrap();
        let st = a.status.clone().unwrap_or_default();
        assert!(st.resolved, "{name} must be resolved: {a:?}");
        assert!(st.resolved_at.is_some(), "{name} must say when it resolved");
        assert!(a.spec.ends_at.is_some(), "{name} must carry endsAt: {a:?}");
    }
    let first = api
        .get(&received_alert_name("DatabaseDown", "bbbb000000000001", T1))
        .await
        .unwrap();
    assert_eq!(
        first.spec.ends_at.as_ref().map(|t| t.0.to_string()),
        Some("2024-05-01T10:30:00Z".to_string())
    );
    let resolved_at = first.status.as_ref().unwrap().resolved_at.clone();

    // Resolved again: nothing changes (resolvedAt stays the first one).
    let (status, body) = post(
        &http,
        &url,
        Some(TOKEN),
        &am_payload("lifeboat", vec![resolved]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let again = api
        .get(first.metadata.name.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(again.status.unwrap().resolved_at, resolved_at);
    assert_eq!(env.alerts(NS).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_rejected_and_write_nothing() {
    let env = Env::start(&["team-a"]).await;
    let ctl = Controller::start(
        &env,
        &Opts {
            max_body_bytes: Some(4096),
            ..Opts::with_token()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let url = ctl.url("/webhook");
    let good = am_payload("lifeboat", three_alerts());

    // Authentication.
    for (token, what) in [
        (None, "missing token"),
        (Some("wrong"), "wrong token"),
        (Some(""), "empty token"),
    ] {
        let mut req = http.post(&url).json(&good);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "{what}");
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "{what}: 401 must carry a Bearer challenge, got {challenge:?}"
        );
    }
    let resp = http
        .post(&url)
        .header("authorization", format!("Basic {TOKEN}"))
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "another auth scheme");

    // Malformed bodies.
    let send_raw = |body: String, ct: &'static str| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let resp = http
                .post(&url)
                .bearer_auth(TOKEN)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    let (status, text) = send_raw(
        "{\"version\": \"4\", \"alerts\": [".into(),
        "application/json",
    )
    .await;
    assert_eq!(status, 400, "truncated JSON: {text}");
    assert!(text.contains("invalid JSON"), "{text}");
    let (status, text) = send_raw(good.to_string(), "text/plain").await;
    assert_eq!(status, 400, "wrong content type: {text}");
    assert!(text.contains("Content-Type"), "{text}");

    let mut wrong_version = good.clone();
    wrong_version["version"] = json!("3");
    let (status, text) = send_raw(wrong_version.to_string(), "application/json").await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("version"),
        "message must name the field: {text}"
    );

    let mut bad_status = good.clone();
    bad_status["alerts"][2]["status"] = json!("foo");
    let (status, text) = send_raw(bad_status.to_string(), "application/json").await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains(r#"alerts[2].status: must be \"firing\" or \"resolved\", got \"foo\""#),
        "{text}"
    );

    let mut no_labels = good.clone();
    no_labels["alerts"][1]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    let (status, text) = send_raw(no_labels.to_string(), "application/json").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("alerts[1].labels"), "{text}");

    let mut no_start = good.clone();
    no_start["alerts"][0]
        .as_object_mut()
        .unwrap()
        .remove("startsAt");
    let (status, text) = send_raw(no_start.to_string(), "application/json").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("alerts[0].startsAt"), "{text}");

    let mut wrong_type = good.clone();
    wrong_type["alerts"][0]["labels"]["app"] = json!(42);
    let (status, text) = send_raw(wrong_type.to_string(), "application/json").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid type"), "serde's message: {text}");

    // Oversized.
    let mut big = good.clone();
    big["commonAnnotations"]["padding"] = json!("x".repeat(10_000));
    let (status, text) = send_raw(big.to_string(), "application/json").await;
    assert_eq!(status, 413, "{text}");

    // A tenant namespace that is not enabled.
    let (status, body) = post(&http, &ctl.url("/webhook/team-a"), Some(TOKEN), &good).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.to_string().contains("team-a"),
        "404 must say why: {body}"
    );

    assert!(
        env.alerts(NS).await.is_empty(),
        "a rejected request wrote something"
    );
    assert!(
        env.alerts("team-a").await.is_empty(),
        "a rejected request wrote something"
    );
    let log = ctl.log_text();
    assert!(
        !log.contains(TOKEN),
        "the token must never be logged:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabled_tenant_namespaces_get_their_own_alerts() {
    let env = Env::start(&["team-a", "team-b"]).await;
    let ctl = Controller::start(
        &env,
        &Opts {
            tenants: vec!["team-a".into()],
            ..Opts::with_token()
        },
    )
    .await;
    let http = reqwest::Client::new();
    let (status, body) = post(
        &http,
        &ctl.url("/webhook/team-a"),
        Some(TOKEN),
        &am_payload("team-a", three_alerts()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["created"], 3);
    let team_a = env.alerts("team-a").await;
    assert_eq!(team_a.len(), 3);
    assert!(
        team_a
            .iter()
            .all(|a| a.spec.source.as_deref() == Some("alertmanager/team-a"))
    );
    assert!(
        env.alerts(NS).await.is_empty(),
        "tenant alerts leaked into {NS}"
    );

    let (status, body) = post(
        &http,
        &ctl.url("/webhook/team-b"),
        Some(TOKEN),
        &am_payload("b", three_alerts()),
    )
    .await;
    assert_eq!(status, 404, "team-b is not enabled: {body}");
    assert!(env.alerts("team-b").await.is_empty());

    // The received-alerts metric counts every alert delivered.
    let metrics = wait_for(
        "alerts counted in /metrics",
        Duration::from_secs(10),
        || async {
            let m = ctl.metrics().await;
            if m.contains("lifeboat_alerts_received_total{source=\"alertmanager/team-a\"} 3") {
                Ok(m)
            } else {
                Err(m)
            }
        },
    )
    .await;
    assert!(metrics.contains("# EOF"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_alert_starts_no_run() {
    let env = Env::start(&[]).await;
    harness::apply_plan(&env, NS, "disk-full", &[("alertname", "DiskFull")]).await;
    harness::apply_plan(&env, NS, "canary", &[("alertname", "Canary")]).await;
    let ctl = Controller::start(&env, &Opts::with_token()).await;
    let http = reqwest::Client::new();

    let resolved = am_alert(
        "resolved",
        &[("alertname", "DiskFull"), ("app", "db")],
        T1,
        Some("cccc000000000001"),
    );
    let (status, body) = post(
        &http,
        &ctl.url("/webhook"),
        Some(TOKEN),
        &am_payload("lifeboat", vec![resolved]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // A firing alert sent afterwards: once its run exists, the controller has had every
    // chance to (wrongly) start one for the resolved alert too.
    let canary = am_alert(
        "firing",
        &[("alertname", "Canary")],
        T1,
        Some("cccc000000000002"),
    );
    let (status, body) = post(
        &http,
        &ctl.url("/webhook"),
        Some(TOKEN),
        &am_payload("lifeboat", vec![canary]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let canary_name = received_alert_name("Canary", "cccc000000000002", T1);
    wait_for(
        "a run for the firing canary alert",
        Duration::from_secs(20),
        || async {
            let runs = harness::runs_for(&env, NS, &canary_name).await;
            if runs.len() == 1 {
                Ok(())
            } else {
                Err(format!(
                    "{} runs; {}\nlog:\n{}",
                    runs.len(),
                    harness::describe(&env, NS).await,
                    ctl.log_text()
                ))
            }
        },
    )
    .await;
    let resolved_name = received_alert_name("DiskFull", "cccc000000000001", T1);
    let runs = harness::runs_for(&env, NS, &resolved_name).await;
    assert!(runs.is_empty(), "a resolved alert started runs: {runs:?}");
    let a = env.alerts_api(NS).get(&resolved_name).await.unwrap();
    assert!(a.status.unwrap_or_default().resolved, "not marked resolved");
    assert_eq!(
        env.runs(NS).await.len(),
        1,
        "only the canary's run may exist"
    );
}
