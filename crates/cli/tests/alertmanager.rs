//! lifeboat behind the REAL Prometheus Alertmanager (Debian's `prometheus-alertmanager`,
//! installed by scripts/install-test-deps.sh): alerts injected through Alertmanager's API
//! reach lifeboat's webhook, start exactly one run, survive Alertmanager's repeats without
//! duplicates, and resolve without a second run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/webhook_harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use harness::{Controller, Env, NS, Opts, TOKEN, wait_for, write_file};
use lifeboat_api::RunPhase;
use lifeboat_operator::naming::received_alert_name;
use serde_json::json;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running Alertmanager; killed when dropped.
struct Alertmanager {
    _child: tokio::process::Child,
    url: String,
    log: std::path::PathBuf,
}

impl Alertmanager {
    async fn start(dir: &Path, webhook_url: &str) -> Alertmanager {
        assert!(
            Path::new(ALERTMANAGER).exists(),
            "{ALERTMANAGER} is missing: run scripts/install-test-deps.sh"
        );
        let config = format!(
            r#"
route:
  receiver: lifeboat
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: lifeboat
    webhook_configs:
      - url: '{webhook_url}'
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials: '{TOKEN}'
"#
        );
        let config_file = write_file(dir, "alertmanager.yml", &config);
        let storage = dir.join("alertmanager-data");
        std::fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let log = dir.join("alertmanager.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {ALERTMANAGER}: {e}"));
        let am = Alertmanager {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::Client::new();
        wait_for(
            "Alertmanager to be ready",
            Duration::from_secs(30),
            || async {
                match http.get(format!("{}/-/ready", am.url)).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    other => Err(format!("{other:?}; log:\n{}", am.log_text())),
                }
            },
        )
        .await;
        am
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn post_alerts(&self, alerts: serde_json::Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&alerts)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "Alertmanager refused the alerts: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }
}

/// `lifeboat_alerts_received_total{source=...}` from the controller's metrics, or 0.
fn received_count(metrics: &str, source: &str) -> u64 {
    let prefix = format!("lifeboat_alerts_received_total{{source=\"{source}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alertmanager_alert_runs_once_and_resolves() {
    let env = Env::start(&[]).await;
    let labels = [
        ("alertname", "PrimaryDatabaseDown"),
        ("app", "ferretdb"),
        ("severity", "critical"),
    ];
    harness::apply_plan(
        &env,
        NS,
        "failover",
        &[("app", "ferretdb"), ("severity", "critical")],
    )
    .await;
    let ctl = Controller::start(&env, &Opts::with_token()).await;
    let am = Alertmanager::start(env.dir(), &ctl.url("/webhook")).await;

    // Whole seconds: Kubernetes stores timestamps to the second.
    let starts_at = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 5).unwrap();
    let label_map: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let alert = json!({
        "labels": label_map,
        "annotations": {"summary": "the primary is down"},
        "startsAt": starts_at.to_string(),
        "generatorURL": "http://prometheus.example/graph",
    });
    am.post_alerts(json!([alert.clone()])).await;

    // Alertmanager's fingerprint must be the one lifeboat computes for the same labels.
    let fingerprint = lifeboat_operator::webhook::payload::fingerprint(&label_map);
    let name = received_alert_name("PrimaryDatabaseDown", &fingerprint, &starts_at.to_string());
    let api = env.alerts_api(NS);
    let received = wait_for("the ReceivedAlert", Duration::from_secs(30), || async {
        match api.get_opt(&name).await.unwrap() {
            Some(a) => Ok(a),
            None => Err(format!(
                "not there; stored: {:?}\ncontroller log:\n{}\nalertmanager log:\n{}",
                env.alerts(NS)
                    .await
                    .iter()
                    .map(|a| (a.metadata.name.clone(), a.spec.fingerprint.clone()))
                    .collect::<Vec<_>>(),
                ctl.log_text(),
                am.log_text()
            )),
        }
    })
    .await;
    assert_eq!(
        received.spec.fingerprint.as_deref(),
        Some(fingerprint.as_str())
    );
    assert_eq!(
        received.spec.source.as_deref(),
        Some("alertmanager/lifeboat")
    );
    assert_eq!(received.spec.labels, label_map);

    let run = wait_for(
        "a Completed RecoveryRun",
        Duration::from_secs(30),
        || async {
            let runs = harness::runs_for(&env, NS, &name).await;
            match runs.as_slice() {
                [r] if r
                    .status
                    .as_ref()
                    .is_some_and(|s| s.phase == RunPhase::Completed) =>
                {
                    Ok(r.clone())
                }
                _ => Err(format!(
                    "runs: {runs:?}\ncontroller log:\n{}",
                    ctl.log_text()
                )),
            }
        },
    )
    .await;

    // Alertmanager repeats the notification (repeat_interval 2s): nothing new in lifeboat.
    wait_for("a repeated delivery", Duration::from_secs(30), || async {
        let m = ctl.metrics().await;
        let n = received_count(&m, "alertmanager/lifeboat");
        if n >= 2 {
            Ok(())
        } else {
            Err(format!(
                "{n} deliveries; alertmanager log:\n{}",
                am.log_text()
            ))
        }
    })
    .await;
    let alerts = env.alerts(NS).await;
    assert_eq!(
        alerts.len(),
        1,
        "repeats must not create ReceivedAlerts: {alerts:?}"
    );
    let runs = env.runs(NS).await;
    assert_eq!(runs.len(), 1, "repeats must not start runs: {runs:?}");
    assert_eq!(runs[0].metadata.name, run.metadata.name);

    // Resolve it: Alertmanager sends a resolved notification.
    let mut resolved = alert;
    resolved["endsAt"] = json!(
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - 1)
            .unwrap()
            .to_string()
    );
    am.post_alerts(json!([resolved])).await;
    wait_for(
        "the ReceivedAlert to be resolved",
        Duration::from_secs(30),
        || async {
            let a = api.get(&name).await.unwrap();
            if a.status.as_ref().is_some_and(|s| s.resolved) {
                Ok(())
            } else {
                Err(format!(
                    "{:?}\nalertmanager log:\n{}",
                    a.status,
                    am.log_text()
                ))
            }
        },
    )
    .await;
    let alerts = env.alerts(NS).await;
    assert_eq!(alerts.len(), 1, "resolution must not create ReceivedAlerts");
    let runs = env.runs(NS).await;
    assert_eq!(runs.len(), 1, "resolution must not start a run: {runs:?}");
}
