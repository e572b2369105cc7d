//! Notify steps through the real `lifeboat controller`, on the backend
//! `LIFEBOAT_TEST_CLUSTER` chooses, against a webhook receiver in this test: the rendered
//! body and the bearer token from a Secret arrive, a 5xx is retried, and an undeliverable
//! notification fails the run only when the step is `required`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use lifeboat_api::{RunPhase, StepPhase};
use serde_json::{Value, json};

mod common;

use common::harness::{Harness, plan, pod_steps};

/// What the receiver got, and how many requests it still answers 503.
#[derive(Default)]
struct Received {
    requests: Vec<(HeaderMap, Value)>,
    fail_next: usize,
    always_fail: bool,
}

type Shared = Arc<Mutex<Received>>;

async fn hook(State(r): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    let mut r = r.lock().unwrap();
    r.requests.push((headers, body));
    if r.always_fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if r.fail_next > 0 {
        r.fail_next -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::OK
}

/// A webhook receiver on a loopback port: `/hook`.
async fn receiver(state: Received) -> (SocketAddr, Shared) {
    let shared: Shared = Arc::new(Mutex::new(state));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, shared)
}

/// The Secret `hook` with the receiver's URL and a token.
async fn hook_secret(s: &Harness, addr: SocketAddr) {
    s.cluster
        .apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "hook", "namespace": "default"},
            "stringData": {"url": format!("http://{addr}/hook"), "token": "s3cret"}}))
        .await;
}

/// A receiver answering as `state` says, the cluster and controller, and the Secret `hook`
/// pointing at the receiver.
async fn with_receiver(state: Received) -> (Harness, Shared) {
    let (addr, got) = receiver(state).await;
    let s = Harness::start().await;
    hook_secret(&s, addr).await;
    (s, got)
}

fn notify(required: bool) -> Value {
    json!({"type": "notify", "title": "Tell on-call", "notify": {
        "webhook": {"urlFrom": {"name": "hook", "key": "url"},
                    "tokenFrom": {"name": "hook", "key": "token"}},
        "body": {"text": "{{ .Run.Name }}: sidecar now {{ .Values.podImage }}",
                 "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{ .Alert.Name }}*"}}]},
        "required": required}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_body_arrives_with_the_token_after_a_5xx_is_retried() {
    let (s, got) = with_receiver(Received {
        fail_next: 1,
        ..Default::default()
    })
    .await;
    let mut steps = pod_steps();
    steps.push(notify(true));
    let run = s.start_run(plan("notify-ok", steps)).await;
    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}\n{}", s.ctl.diag());
    let msg = rs.steps[2].message.clone().unwrap_or_default();
    assert!(
        msg.contains("delivered to 127.0.0.1 (HTTP 200) after 2 attempt(s)"),
        "{msg}"
    );
    assert!(
        !msg.contains("/hook"),
        "the URL (a credential) is not shown: {msg}"
    );

    {
        let got = got.lock().unwrap();
        assert_eq!(got.requests.len(), 2, "one 503, then delivered");
        let (headers, body) = &got.requests[1];
        assert_eq!(
            body,
            &json!({"text": format!("{run}: sidecar now example-image:v1"),
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*notify-ok-alert*"}}]})
        );
        assert_eq!(headers["authorization"], "Bearer s3cret");
        assert_eq!(
            headers["x-lifeboat-delivery"], got.requests[0].0["x-lifeboat-delivery"],
            "a retry is the same delivery"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_notification_fails_the_run_only_when_required() {
    let (s, got) = with_receiver(Received {
        always_fail: true,
        ..Default::default()
    })
    .await;

    let mut steps = pod_steps();
    steps.insert(0, notify(false));
    // `.Values.podImage` does not exist yet in the first step: use a body without it.
    steps[0]["notify"]["body"] = json!({"text": "starting {{ .Run.Name }}"});
    let optional = s.start_run(plan("notify-optional", steps)).await;
    let rs = s.finished(&optional).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    assert_eq!(rs.steps[0].phase, StepPhase::Succeeded);
    let msg = rs.steps[0].message.clone().unwrap_or_default();
    assert!(
        msg.contains("not delivered after 5 attempt(s): HTTP 500")
            && msg.contains("the step is not required"),
        "{msg}"
    );
    assert_eq!(
        s.sidecar_image().await,
        "example-image:v1",
        "the run went on"
    );

    let mut steps = vec![notify(true)];
    steps[0]["notify"]["body"] = json!({"text": "starting {{ .Run.Name }}"});
    steps.extend(pod_steps());
    let required = s.start_run(plan("notify-required", steps)).await;
    let rs = s.finished(&required).await;
    assert_eq!(rs.phase, RunPhase::Failed, "{rs:#?}");
    assert!(
        rs.steps[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("HTTP 500"),
        "{rs:#?}"
    );
    assert!(
        rs.steps[1..]
            .iter()
            .all(|st| st.phase == StepPhase::Skipped)
    );
    assert_eq!(
        got.lock().unwrap().requests.len(),
        10,
        "5 attempts per delivery"
    );
    s.stop().await;
}

fn plan_notification(events: &[&str], body: Value) -> Value {
    json!({"events": events, "webhook": {"urlFrom": {"name": "hook", "key": "url"},
        "tokenFrom": {"name": "hook", "key": "token"}}, "body": body})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_notifications_arrive_on_the_events_asked_for_and_are_recorded() {
    let (s, got) = with_receiver(Received::default()).await;
    // Read, wait for approval, patch: the run is Running when it starts.
    let mut steps = pod_steps();
    steps.insert(1, json!({"type": "approval", "approval": {}}));
    let mut p = plan("notified", steps);
    p["spec"]["notifications"] = json!([
        plan_notification(
            &["Started", "WaitingForApproval", "Completed"],
            json!({"text": "{{ .Run.Name }} {{ .Run.Phase }}"})
        ),
        plan_notification(&["Failed", "Aborted"], json!({"text": "never sent"})),
    ]);
    let run = s.start_run(p).await;
    s.wait_for_phase(&run, RunPhase::WaitingForApproval).await;
    // Started and WaitingForApproval are delivered while the run waits for a person.
    lifeboat_testkit::wait::eventually("two notifications while waiting", || async {
        (got.lock().unwrap().requests.len() >= 2).then_some(())
    })
    .await;
    let out = s.lifeboat(&["approve", &run]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    // Recorded with the run's last write, after it finished.
    let rs = lifeboat_testkit::wait::eventually("the deliveries recorded", || async {
        let r = s.finished(&run).await;
        (r.notifications.len() == 3).then_some(r)
    })
    .await;
    assert!(
        rs.notifications.iter().all(|n| n.delivered && n.index == 0),
        "{rs:#?}"
    );
    let mut events: Vec<&str> = rs.notifications.iter().map(|n| n.event.as_str()).collect();
    events.sort_unstable();
    assert_eq!(events, ["Completed", "Started", "WaitingForApproval"]);

    let show = s.lifeboat(&["runs", "show", "-n", "default", &run]).await;
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("Notifications:")
            && shown.contains("Completed (#1): notification delivered"),
        "{shown}"
    );

    let mut texts: Vec<String> = got
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|(_, b)| b["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        [
            format!("{run} Completed"),
            format!("{run} Running"),
            format!("{run} WaitingForApproval")
        ]
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_plan_notification_is_recorded_and_never_fails_the_run() {
    let (s, got) = with_receiver(Received {
        always_fail: true,
        ..Default::default()
    })
    .await;
    let mut p = plan("notified-down", pod_steps());
    p["spec"]["notifications"] = json!([plan_notification(
        &["Completed"],
        json!({"text": "{{ .Values.podImage }}"})
    )]);
    let run = s.start_run(p).await;
    let rs = lifeboat_testkit::wait::eventually("the failed delivery recorded", || async {
        let r = s.finished(&run).await;
        (!r.notifications.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    let n = &rs.notifications[0];
    assert!(!n.delivered && n.attempts == 5, "{n:?}");
    assert!(n.message.contains("HTTP 500"), "{n:?}");
    assert_eq!(got.lock().unwrap().requests.len(), 5);
    s.stop().await;
}
