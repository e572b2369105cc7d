//! Leader election through real `lifeboat controller` replicas sharing one cluster (the
//! backend `LIFEBOAT_TEST_CLUSTER` chooses: a real Lease on a real control plane with
//! `kube`):
//! one leader executes while every replica serves the webhook; a SIGKILLed leader is
//! replaced once its Lease expires; a SIGTERMed leader hands the Lease over at once. In
//! every case each run completes exactly once, no step skipped, each Job created once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use lifeboat_api::{RecoveryRun, RunPhase, StepPhase};
use lifeboat_operator::naming;
use lifeboat_operator::run::REPORTER;
use lifeboat_testkit::TestCluster;
use lifeboat_testkit::scenarios::wait_run_finished;
use serde_json::{Value, json};

/// The Lease `lifeboat controller` elects on by default.
const LEASE: &str = "lifeboat-controller";
const PLAN: &str = "failover";
/// Steps of [`plan`]; the Job is step 2, the gate step 3.
const STEPS: usize = 5;
const JOB_STEP: usize = 2;
const GATE_STEP: usize = 3;
/// A short lease, so a killed leader is replaced quickly.
const SHORT_LEASE: [&str; 2] = ["--lease-duration", "2s"];

/// Replica flags: alerts go to `default` (where the plan and pods are) and `lease` seconds.
fn flags(lease: &[&'static str; 2]) -> Vec<&'static str> {
    let mut f = vec!["--alert-namespace", "default"];
    f.extend(lease);
    f
}

/// read the target's image → patch it into the sidecar → a Job → wait until the test opens
/// the target's gate (ConfigMap `gate-<target>`, `data.open: "yes"`) → mark the pod.
fn plan() -> Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
    "metadata": {"name": PLAN, "namespace": "default"},
    "spec": {"alertLabels": {"suite": "leader"}, "concurrencyPolicy": "Allow", "steps": [
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
            "namespace": "default", "name": "app-{{ .Alert.Labels.target }}",
            "fieldPath": "spec.containers[0].image", "outputKey": "podImage"}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "app-{{ .Alert.Labels.target }}", "override": {"fieldPath": "spec.containers[1].image",
            "value": {"raw": "{{ .Values.podImage }}"}}}},
        {"type": "job", "job": {"template": {
            "metadata": {"annotations": {"sim.lifeboat.dev/duration": "100ms"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "command": ["sh", "-c", "sleep 0.1; echo {{ .Values.podImage }}"]}]}}}},
        {"type": "wait", "timeout": "10m", "wait": {"apiVersion": "v1", "resource": "configmaps",
            "namespace": "default", "name": "gate-{{ .Alert.Labels.target }}",
            "fieldPath": "data.open", "condition": "Equals", "value": "yes"}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "app-{{ .Alert.Labels.target }}", "override": {"fieldPath": "metadata.annotations.recovered",
            "value": {"raw": "{{ .Run.Name }}"}}, "patchType": "application/merge-patch+json"}}
    ]}})
}

fn image(target: &str) -> String {
    format!("registry/app:{target}")
}

/// The pod of `target` and its gate, open or closed.
async fn add_target(cluster: &TestCluster, target: &str, gate_open: bool) {
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("app-{target}"), "namespace": "default"},
            "spec": {"containers": [
                {"name": "app", "image": image(target)},
                {"name": "sidecar", "image": "sidecar:old"}]}}))
        .await;
    set_gate(cluster, target, gate_open).await;
}

async fn set_gate(cluster: &TestCluster, target: &str, open: bool) {
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("gate-{target}"), "namespace": "default"},
            "data": {"open": if open { "yes" } else { "no" }}}))
        .await;
}

/// Sends one firing alert about `target` to `replica`'s webhook; returns the run's name.
async fn send_alert(replica: &Controller, target: &str) -> String {
    let fingerprint = format!("feed{target}");
    let starts_at = "2024-05-01T10:00:00Z";
    let body = json!({
        "version": "4", "receiver": "lifeboat", "status": "firing",
        "groupKey": "{}:{alertname=\"AppDown\"}", "truncatedAlerts": 0,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "AppDown", "suite": "leader", "target": target},
            "annotations": {}, "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph", "fingerprint": fingerprint,
        }],
    });
    let resp = reqwest::Client::new()
        .post(replica.webhook_url("/webhook"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(
        status,
        200,
        "webhook of {} answered {status}: {text}\n{}",
        replica.identity,
        replica.log_text()
    );
    let alert = naming::received_alert_name("AppDown", &fingerprint, starts_at);
    naming::run_name(PLAN, &alert)
}

/// The Lease's spec as stored right now.
async fn lease(cluster: &TestCluster) -> Value {
    cluster
        .get("coordination.k8s.io/v1", "leases", Some(LIFEBOAT_NS), LEASE)
        .await
        .map(|l| l["spec"].clone())
        .unwrap_or(Value::Null)
}

/// The Lease's holder right now, `None` when it does not exist or has no holder.
async fn lease_holder(cluster: &TestCluster) -> Option<String> {
    lease(cluster).await["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

/// Waits until `identity` holds the Lease.
async fn wait_holder(cluster: &TestCluster, identity: &str, logs: &[&Controller]) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while lease_holder(cluster).await.as_deref() != Some(identity) {
        assert!(
            std::time::Instant::now() < deadline,
            "{identity} did not acquire the Lease; lease: {}\n{}",
            lease(cluster).await,
            logs_of(logs)
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Waits until run `name` has finished; `ctl`'s log in the failure message.
async fn wait_run_done(cluster: &TestCluster, name: &str, ctl: &Controller) -> RecoveryRun {
    wait_run_finished(&cluster.client(), "default", name, &|| ctl.diag()).await
}

fn logs_of(replicas: &[&Controller]) -> String {
    replicas
        .iter()
        .map(|r| format!("--- log of {}:\n{}", r.identity, r.log_text()))
        .collect()
}

/// Checks that run `name` about `target` completed with every step done once, except the
/// steps in `repeated` (a step in flight when its executor stopped), done twice.
async fn assert_run_completed(
    run: &RecoveryRun,
    cluster: &TestCluster,
    target: &str,
    repeated: &[usize],
    logs: &str,
) {
    let name = run.metadata.name.clone().unwrap();
    let rs = run.status.clone().unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "run {name}: {rs:#?}\n{logs}");
    assert_eq!(rs.steps.len(), STEPS, "run {name}: {rs:#?}");
    let attempts: Vec<u32> = rs.steps.iter().map(|s| s.attempts).collect();
    let want: Vec<u32> = (0..STEPS)
        .map(|i| if repeated.contains(&i) { 2 } else { 1 })
        .collect();
    for (k, s) in rs.steps.iter().enumerate() {
        assert!(
            s.phase == StepPhase::Succeeded && s.finished_at.is_some(),
            "step {k} of run {name} was skipped or not finished: {s:#?}\n{logs}"
        );
    }
    assert_eq!(
        attempts, want,
        "run {name}: each step executed once (only a step in flight may execute again)\n{logs}"
    );
    assert_eq!(rs.values["podImage"], image(target).as_str(), "run {name}");
    let pod = cluster
        .get("v1", "pods", Some("default"), &format!("app-{target}"))
        .await
        .unwrap();
    assert_eq!(
        pod["spec"]["containers"][1]["image"],
        image(target).as_str(),
        "pod of {target} not patched"
    );
    assert_eq!(
        pod["metadata"]["annotations"]["recovered"],
        name.as_str(),
        "pod of {target} not marked by run {name}"
    );
}

/// Every run, and every Job, exactly once: the runs are exactly `runs`, the Jobs exactly
/// one per run with its deterministic name, and the API server accepted as many creates.
async fn assert_jobs_once(cluster: &TestCluster, runs: &[&str], logs: &str) {
    let all: BTreeSet<String> = Api::<RecoveryRun>::namespaced(cluster.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    let want: BTreeSet<String> = runs.iter().map(|r| r.to_string()).collect();
    assert_eq!(all, want, "exactly one run per alert\n{logs}");
    let jobs: BTreeSet<String> = Api::<Job>::namespaced(cluster.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect();
    let want_jobs: BTreeSet<String> = runs.iter().map(|r| naming::job_name(r, JOB_STEP)).collect();
    assert_eq!(jobs, want_jobs, "one Job per run\n{logs}");
    cluster.assert_each_created_once("jobs", runs.len() as u64, logs);
}

/// lifeboat's Events in `default`, once at least one reported by `leader` has arrived (they
/// are published in the background).
async fn wait_for_events(cluster: &TestCluster, leader: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(cluster.client(), "default");
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let ours: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reporting_controller.as_deref() == Some(REPORTER))
            .collect();
        if ours
            .iter()
            .any(|e| e.reporting_instance.as_deref() == Some(leader))
        {
            return ours;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Event reported by {leader}: {ours:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Waits until step `index` of run `name` is Running with `attempts` attempts.
async fn wait_step_running(cluster: &TestCluster, name: &str, index: usize, attempts: u32) {
    eventually(
        &format!("step {index} of run {name} to run (attempt {attempts})"),
        || async {
            let run = workload::run_now(cluster, name).await?;
            let s = run.status?.steps.get(index)?.clone();
            (s.phase == StepPhase::Running && s.attempts == attempts).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn two_replicas_elect_one_leader_both_take_alerts_and_each_run_executes_once() {
    let cluster = TestCluster::start("local").await;
    cluster.apply(plan()).await;
    for t in ["t0", "t1"] {
        add_target(&cluster, t, true).await;
    }
    let f = flags(&SHORT_LEASE);
    // Both start together and race for the Lease.
    let (r0, r1) = tokio::join!(replica(&cluster, 0, &f), replica(&cluster, 1, &f));
    let leader_id = eventually("a replica to hold the Lease", || lease_holder(&cluster)).await;
    let (leader, standby) = if leader_id == r0.identity {
        (r0, r1)
    } else {
        assert_eq!(leader_id, r1.identity, "an unknown replica holds the Lease");
        (r1, r0)
    };
    let logs = || logs_of(&[&leader, &standby]);

    // One alert through each replica's webhook.
    let run_a = send_alert(&leader, "t0").await;
    let run_b = send_alert(&standby, "t1").await;
    for (run, target) in [(&run_a, "t0"), (&run_b, "t1")] {
        let done = wait_run_done(&cluster, run, &leader).await;
        assert_run_completed(&done, &cluster, target, &[], &logs()).await;
    }
    assert_jobs_once(&cluster, &[&run_a, &run_b], &logs()).await;

    // The Lease never changed hands; the standby executed nothing.
    let spec = lease(&cluster).await;
    assert_eq!(
        spec["holderIdentity"],
        leader.identity.as_str(),
        "{spec}\n{}",
        logs()
    );
    assert_eq!(
        spec["leaseTransitions"],
        0,
        "the Lease changed hands: {spec}\n{}",
        logs()
    );
    // Outcomes are counted once the runs' final statuses are written: wait for both.
    eventually("the leader to count both runs Completed", || async {
        let m = leader.metrics().await;
        (metric_value(&m, r#"lifeboat_runs_total{outcome="Completed"}"#) == Some(2.0)).then_some(())
    })
    .await;
    let lm = leader.metrics().await;
    let sm = standby.metrics().await;
    let received = r#"lifeboat_alerts_received_total{source="alertmanager/lifeboat"}"#;
    assert_eq!(metric_value(&lm, received), Some(1.0), "leader:\n{lm}");
    assert_eq!(metric_value(&sm, received), Some(1.0), "standby:\n{sm}");
    let completed = r#"lifeboat_runs_total{outcome="Completed"}"#;
    assert_eq!(metric_value(&lm, completed), Some(2.0), "leader:\n{lm}");
    assert_eq!(
        metric_value(&sm, "lifeboat_runs_started_total"),
        Some(0.0),
        "the standby started runs:\n{sm}"
    );
    assert!(
        !sm.contains("lifeboat_runs_total{")
            && !sm.contains("lifeboat_step_duration_seconds_count"),
        "the standby executed steps:\n{sm}"
    );
    assert!(
        !standby.log_text().contains("controllers running"),
        "the standby ran the controllers:\n{}",
        logs()
    );
    // Every Event lifeboat published came from the leader.
    let events = wait_for_events(&cluster, &leader.identity).await;
    let by_standby: Vec<_> = events
        .iter()
        .filter(|e| e.reporting_instance.as_deref() != Some(leader.identity.as_str()))
        .map(|e| {
            (
                e.reporting_instance.clone(),
                e.reason.clone(),
                e.note.clone(),
            )
        })
        .collect();
    assert!(
        by_standby.is_empty(),
        "Events not reported by the leader: {by_standby:?}\n{}",
        logs()
    );
    // Both are ready: the standby serves the webhook.
    for r in [&leader, &standby] {
        assert_eq!(r.health_get("/readyz").await.0, 200, "{}", r.identity);
    }
    standby.terminate().await;
    leader.terminate().await;
}

#[tokio::test]
async fn a_killed_leader_is_replaced_after_lease_expiry_and_its_run_completes() {
    let cluster = TestCluster::start("local").await;
    cluster.apply(plan()).await;
    add_target(&cluster, "t0", false).await;
    let f = flags(&SHORT_LEASE);
    let first = replica(&cluster, 0, &f).await;
    wait_holder(&cluster, &first.identity, &[&first]).await;
    let second = replica(&cluster, 1, &f).await;

    let run = send_alert(&second, "t0").await;
    // The leader has run the Job and waits on the closed gate.
    wait_step_running(&cluster, &run, GATE_STEP, 1).await;
    let before = lease(&cluster).await;
    let first_log = first.log_text();
    first.kill().await;

    wait_holder(&cluster, &second.identity, &[&second]).await;
    let spec = lease(&cluster).await;
    assert_eq!(
        spec["leaseTransitions"].as_i64(),
        Some(before["leaseTransitions"].as_i64().unwrap_or(0) + 1),
        "an expired Lease is taken over as a transition: {spec}"
    );
    // The new leader picks up the step in flight; then the gate opens.
    wait_step_running(&cluster, &run, GATE_STEP, 2).await;
    set_gate(&cluster, "t0", true).await;
    let done = wait_run_done(&cluster, &run, &second).await;
    let logs = format!(
        "--- log of the killed leader:\n{first_log}\n{}",
        logs_of(&[&second])
    );
    assert_run_completed(&done, &cluster, "t0", &[GATE_STEP], &logs).await;
    assert_jobs_once(&cluster, &[&run], &logs).await;
    // The outcome is counted once the run's final status is written: wait for it.
    let completed = r#"lifeboat_runs_total{outcome="Completed"}"#;
    eventually("the new leader to count the run Completed", || async {
        (metric_value(&second.metrics().await, completed) == Some(1.0)).then_some(())
    })
    .await;
    second.assert_no_panic();
    second.terminate().await;
}

#[tokio::test]
async fn a_terminated_leader_releases_the_lease_and_the_standby_takes_over_at_once() {
    let cluster = TestCluster::start("local").await;
    cluster.apply(plan()).await;
    add_target(&cluster, "t0", false).await;
    // A lease far longer than the test's deadline: only a release explains a takeover.
    let f = flags(&["--lease-duration", "1h"]);
    let first = replica(&cluster, 0, &f).await;
    wait_holder(&cluster, &first.identity, &[&first]).await;
    let second = replica(&cluster, 1, &f).await;

    let run = send_alert(&first, "t0").await;
    wait_step_running(&cluster, &run, GATE_STEP, 1).await;

    // Record every version of the Lease from now on.
    let leases: Api<Lease> = Api::namespaced(cluster.client(), LIFEBOAT_NS);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={LEASE}"));
    let second_id = second.identity.clone();
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let history = tokio::spawn(async move {
        let mut seen_tx = Some(seen_tx);
        let mut holders: Vec<Option<String>> = Vec::new();
        let mut stream = watcher(leases, cfg).applied_objects().boxed();
        while let Some(lease) = stream.try_next().await.unwrap() {
            if let Some(tx) = seen_tx.take() {
                let _ = tx.send(());
            }
            let holder = lease
                .spec
                .and_then(|s| s.holder_identity)
                .filter(|h| !h.is_empty());
            let done = holder.as_deref() == Some(second_id.as_str());
            if holders.last() != Some(&holder) {
                holders.push(holder);
            }
            if done {
                return holders;
            }
        }
        holders
    });
    // The watch delivers the current Lease (held by the first replica) before the signal,
    // so the release cannot be missed.
    tokio::time::timeout(DEADLINE, seen_rx)
        .await
        .expect("the Lease watch delivered nothing")
        .expect("the Lease watch ended");
    let before = lease(&cluster).await;
    assert_eq!(before["holderIdentity"], first.identity.as_str());

    let first_log_path = first.log.clone();
    let first_identity = first.identity.clone();
    // Exits 0 (asserted by `terminate`).
    first.terminate().await;
    let first_log = std::fs::read_to_string(&first_log_path).unwrap_or_default();
    let logs = format!(
        "--- log of the terminated leader:\n{first_log}\n{}",
        logs_of(&[&second])
    );
    assert!(
        first_log.contains("released leadership"),
        "the leader did not release the Lease:\n{logs}"
    );

    let holders = match tokio::time::timeout(DEADLINE, history).await {
        Ok(holders) => holders.unwrap(),
        Err(_) => panic!(
            "the standby did not take over; lease {}\n{logs}",
            lease(&cluster).await
        ),
    };
    assert_eq!(
        holders,
        vec![Some(first_identity), None, Some(second.identity.clone())],
        "the Lease must go from the leader to nobody (released) to the standby\n{logs}"
    );
    let spec = lease(&cluster).await;
    assert_eq!(
        spec["leaseTransitions"], before["leaseTransitions"],
        "a released Lease is taken over, not stolen after expiry: {spec}\n{logs}"
    );

    // The standby resumes the step the leader abandoned, then completes the run.
    wait_step_running(&cluster, &run, GATE_STEP, 2).await;
    set_gate(&cluster, "t0", true).await;
    let done = wait_run_done(&cluster, &run, &second).await;
    assert_run_completed(&done, &cluster, "t0", &[GATE_STEP], &logs).await;
    assert_jobs_once(&cluster, &[&run], &logs).await;
    second.terminate().await;
}
