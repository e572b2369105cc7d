//! `lifeboat trigger`, `runs` and `drill` with the real `lifeboat controller` binary
//! running, on the backend that `LIFEBOAT_TEST_CLUSTER` chooses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use lifeboat_testkit::{ControllerProcess, TestCluster};
use serde_json::json;
use tokio::process::Command;

const NS: &str = "ops";

/// A cluster with lifeboat's CRDs, a ConfigMap and a plan, and the controller binary
/// running against it.
struct Env {
    cluster: TestCluster,
    _controller: Option<ControllerProcess>,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(true).await
    }

    /// The cluster, and the controller only when `controller` is true.
    async fn start_with(controller: bool) -> Env {
        let cluster = TestCluster::start("mgmt").await;
        cluster.create_namespaces(&[NS]).await;
        cluster
            .apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "app-config", "namespace": NS},
                "data": {"color": "blue"}
            }))
            .await;
        cluster
            .apply(json!({
                "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
                "metadata": {"name": "recolor", "namespace": NS},
                "spec": {
                    "alertLabels": {"alertname": "Recolor"},
                    "steps": [
                        {"type": "readField", "title": "Read the color", "readField": {
                            "apiVersion": "v1", "resource": "configmaps", "namespace": NS,
                            "name": "app-config", "fieldPath": "data.color", "outputKey": "color"}},
                        {"type": "patch", "title": "Remember the color", "patch": {
                            "apiVersion": "v1", "resource": "configmaps", "namespace": NS,
                            "name": "app-config",
                            "override": {"fieldPath": "data.previous",
                                         "value": {"raw": "was {{ .Values.color }}"}},
                            "patchType": "application/merge-patch+json"}}
                    ]
                }
            }))
            .await;
        cluster
            .apply(json!({
                "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
                "metadata": {"name": "read-missing", "namespace": NS},
                "spec": {
                    "alertLabels": {"alertname": "ReadMissing"},
                    "steps": [
                        {"type": "readField", "title": "Read a missing key", "readField": {
                            "apiVersion": "v1", "resource": "configmaps", "namespace": NS,
                            "name": "app-config", "fieldPath": "data.missing",
                            "outputKey": "missing"}}
                    ]
                }
            }))
            .await;
        let controller = if controller {
            Some(
                ControllerProcess::start(
                    Path::new(env!("CARGO_BIN_EXE_lifeboat")),
                    cluster.kubeconfig(),
                    cluster.dir(),
                    "lifeboat-0",
                    &[
                        "--log-level",
                        "warn",
                        "--no-leader-election",
                        "--webhook-addr",
                        "127.0.0.1:0",
                    ],
                )
                .await,
            )
        } else {
            None
        };
        Env {
            cluster,
            _controller: controller,
        }
    }

    async fn lifeboat(&self, args: &[&str]) -> Output {
        let run = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(args)
            .env("KUBECONFIG", self.cluster.kubeconfig())
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(Duration::from_secs(150), run)
            .await
            .unwrap_or_else(|_| panic!("lifeboat {args:?} did not finish within 150s"))
            .unwrap()
    }

    async fn color_config(&self) -> serde_json::Value {
        self.cluster
            .get("v1", "configmaps", Some(NS), "app-config")
            .await
            .expect("app-config exists")
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_runs_the_plan_and_runs_shows_it() {
    let env = Env::start().await;
    let out = env
        .lifeboat(&[
            "trigger",
            "-n",
            NS,
            "--label",
            "alertname=Recolor",
            "--wait",
            "--timeout",
            "120s",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let alert = stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        alert.starts_with("recolor-"),
        "first line is the alert name\n{}",
        text(&out)
    );
    assert!(stdout.contains("run Completed"), "{}", text(&out));
    assert_eq!(
        env.color_config().await["data"]["previous"],
        "was blue",
        "the patch step wrote the rendered value"
    );

    let list = env.lifeboat(&["runs", "list", "-n", NS]).await;
    assert_eq!(list.status.code(), Some(0), "{}", text(&list));
    let list_out = String::from_utf8_lossy(&list.stdout).into_owned();
    let row = list_out
        .lines()
        .find(|l| l.contains("recolor"))
        .unwrap_or_else(|| panic!("runs list shows the run\n{}", text(&list)));
    assert!(
        row.contains("Completed") && row.contains("2/2"),
        "row: {row}"
    );
    let run_name = row.split_whitespace().next().unwrap().to_string();

    let show = env.lifeboat(&["runs", "show", "-n", NS, &run_name]).await;
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    let show_out = String::from_utf8_lossy(&show.stdout);
    for needle in [
        "Read the color",
        "Remember the color",
        "Succeeded",
        "was blue",
        "color = \"blue\"",
    ] {
        assert!(
            show_out.contains(needle),
            "`{needle}` missing\n{}",
            text(&show)
        );
    }

    let watch = env.lifeboat(&["runs", "watch", "-n", NS, &run_name]).await;
    assert_eq!(
        watch.status.code(),
        Some(0),
        "watching a Completed run exits 0\n{}",
        text(&watch)
    );

    let all = env.lifeboat(&["runs", "list", "-A"]).await;
    assert!(
        String::from_utf8_lossy(&all.stdout).contains(NS),
        "-A shows the namespace column\n{}",
        text(&all)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_shows_rendered_patches_and_changes_nothing() {
    let env = Env::start().await;
    let before = env.color_config().await;
    let out = env.lifeboat(&["drill", "-n", NS, "recolor"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "recolor-drill-",
        "Rendered writes (not applied)",
        "Remember the color",
        "was blue",
        "Drill completed",
    ] {
        assert!(
            stdout.contains(needle),
            "`{needle}` missing\n{}",
            text(&out)
        );
    }
    assert_eq!(
        env.color_config().await["data"],
        before["data"],
        "a drill must not change the object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_a_missing_run_is_an_error() {
    let env = Env::start().await;
    let out = env
        .lifeboat(&["runs", "watch", "-n", NS, "no-such-run"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-run"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_exits_1_and_says_why() {
    let env = Env::start().await;
    let out = env
        .lifeboat(&[
            "trigger",
            "-n",
            NS,
            "--label",
            "alertname=ReadMissing",
            "--wait",
            "--timeout",
            "60s",
        ])
        .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a Failed run exits 1\n{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("run Failed"), "{}", text(&out));
    assert!(
        stdout.contains("data.missing"),
        "the failure names the missing path\n{}",
        text(&out)
    );
    let run = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Run:        "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("the run details are shown\n{}", text(&out)))
        .to_string();
    let watch = env.lifeboat(&["runs", "watch", "-n", NS, &run]).await;
    assert_eq!(
        watch.status.code(),
        Some(1),
        "watching a Failed run exits 1\n{}",
        text(&watch)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_without_a_controller_says_so() {
    let env = Env::start_with(false).await;
    let out = env
        .lifeboat(&["drill", "-n", NS, "recolor", "--timeout", "1s"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("still Pending") && stderr.contains("controller"),
        "the error says the run was never picked up\n{}",
        text(&out)
    );
}
