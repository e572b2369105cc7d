//! The webhook when the API server fails: 5xx so Alertmanager retries, and retries create
//! exactly one ReceivedAlert per alert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/webhook_harness.rs"]
mod harness;

use std::collections::BTreeSet;

use harness::{Controller, Env, NS, Opts, TOKEN, am_alert, am_payload, post};
use lifeboat_operator::naming::received_alert_name;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_failures_answer_5xx_and_retries_record_each_alert_once() {
    let env = Env::start(&[]).await;
    let ctl = Controller::start(&env, &Opts::with_token()).await;
    let http = reqwest::Client::new();
    let url = ctl.url("/webhook");
    let starts = "2024-05-01T10:00:00Z";
    let alerts: Vec<_> = (0..40)
        .map(|i| {
            let fp = format!("ffff{i:012}");
            am_alert(
                "firing",
                &[("alertname", "Storm"), ("i", &i.to_string())],
                starts,
                Some(&fp),
            )
        })
        .collect();
    let payload = am_payload("lifeboat", alerts);

    env.sim().faults().set_error_rate(Some("create"), 1.0);
    let (status, body) = post(&http, &url, Some(TOKEN), &payload).await;
    assert!(
        (500..600).contains(&status),
        "API down must answer 5xx, got {status}: {body}"
    );
    assert!(env.alerts(NS).await.is_empty());

    // A third of the writes fail: Alertmanager keeps retrying until every alert is recorded.
    env.sim().faults().set_error_rate(Some("create"), 0.3);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (status, body) = post(&http, &url, Some(TOKEN), &payload).await;
        if status == 200 {
            assert_eq!(
                body["created"].as_u64().unwrap() + body["existing"].as_u64().unwrap(),
                40,
                "{body}"
            );
            break;
        }
        assert!(
            (500..600).contains(&status),
            "partial failure must answer 5xx, got {status}: {body}"
        );
        assert!(
            attempts < 200,
            "still failing after {attempts} attempts: {body}"
        );
    }
    env.sim().faults().set_error_rate(Some("create"), 0.0);

    let stored = env.alerts(NS).await;
    let names: BTreeSet<String> = stored
        .iter()
        .map(|a| a.metadata.name.clone().unwrap())
        .collect();
    let expected: BTreeSet<String> = (0..40)
        .map(|i| received_alert_name("Storm", &format!("ffff{i:012}"), starts))
        .collect();
    assert_eq!(stored.len(), 40, "exactly one object per alert");
    assert_eq!(names, expected);
    let metrics = ctl.metrics().await;
    assert!(
        metrics.contains("lifeboat_api_errors_total{category=\"server\"}"),
        "{metrics}"
    );
}
