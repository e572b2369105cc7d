//! `lifeboat controller`: graceful shutdown on SIGTERM, JSON logs, flag errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_controller_cleanly_and_logs_are_json() {
    let sim = lifeboat_sim::SimCluster::start("mgmt").await.unwrap();
    for crd in lifeboat_api::crds::all() {
        sim.apply_object(serde_json::to_value(crd).unwrap())
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("mgmt.kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let addr_file = dir.path().join("addrs.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args([
            "controller",
            "--log-format",
            "json",
            "--log-level",
            "info",
            "--no-leader-election",
            "--webhook-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--addr-file",
        ])
        .arg(&addr_file)
        .env("KUBECONFIG", &kubeconfig)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !addr_file.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the controller did not write its addresses within 30s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addrs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&addr_file).unwrap()).unwrap();
    assert!(
        addrs["webhook"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "the webhook listens on loopback: {addrs}"
    );

    let pid = Pid::from_raw(child.id().unwrap() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the controller stops within 30s of SIGTERM")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        status.success(),
        "SIGTERM is a graceful shutdown (exit 0), got {status}\n{stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the controller logs something");
    for line in &lines {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "with --log-format json every log line is JSON: {line}"
        );
    }
    assert!(
        stderr.contains("SIGTERM"),
        "the shutdown reason is logged\n{stderr}"
    );
}

#[test]
fn an_unreadable_token_file_is_a_usage_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args([
            "controller",
            "--webhook-token-file",
            "/nonexistent/lifeboat/token",
        ])
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/lifeboat/token"),
        "the error names the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
