//! Every run executes exactly once: its effects happen once and its status writes are not
//! repeated, with many runs at once, and when an executor gives up on a run (its status
//! writes refused) and the run controller retries it later.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lifeboat_api::{RunPhase, StepPhase};
use lifeboat_operator::naming;
use serde_json::json;

const PLANS: usize = 30;

fn plan(i: usize) -> serde_json::Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
        "metadata": {"name": format!("p{i}"), "namespace": "default"},
        "spec": {"alertLabels": {"shard": format!("s{i}")}, "steps": [
            {"type": "readField", "readField": {"apiVersion": "v1", "resource": "configmaps",
                "namespace": "default", "name": format!("c{i}"), "fieldPath": "data.from",
                "outputKey": "from"}},
            {"type": "patch", "patch": {"apiVersion": "v1", "resource": "configmaps",
                "namespace": "default", "name": format!("c{i}"),
                "override": {"fieldPath": "data.to", "value": {"raw": "{{ .Values.from }}"}}}}]}})
}

fn alert(i: usize) -> serde_json::Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
        "metadata": {"name": format!("a{i}"), "namespace": "default"},
        "spec": {"labels": {"shard": format!("s{i}")}}})
}

/// Many alerts at once, each matching its own plan: every effect happens once, every
/// status write lands first time (no executor writes over another's), every step runs one
/// attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_runs_at_once_each_execute_exactly_once() {
    let (sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    for i in 0..PLANS {
        sim.apply_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("c{i}"), "namespace": "default"},
            "data": {"from": format!("v{i}")}}))
            .unwrap();
        create(&client, plan(i), "default").await;
    }
    for i in 0..PLANS {
        wait_plan_validated(&client, "default", &format!("p{i}")).await;
    }
    for i in 0..PLANS {
        create(&client, alert(i), "default").await;
    }
    for i in 0..PLANS {
        let name = naming::run_name(&format!("p{i}"), &format!("a{i}"));
        let run = wait_run_finished(&client, "default", &name).await;
        let rs = run.status.unwrap();
        assert_eq!(rs.phase, RunPhase::Completed, "{name}: {rs:#?}");
        assert!(
            rs.steps
                .iter()
                .all(|s| s.phase == StepPhase::Succeeded && s.attempts == 1),
            "{name}: every step once: {rs:#?}"
        );
        let cm = sim
            .get_object("v1", "configmaps", Some("default"), &format!("c{i}"))
            .unwrap();
        assert_eq!(cm["data"]["to"], format!("v{i}"));
    }
    ctl.stop().await;
    let stats = sim.stats();
    assert_eq!(
        stats.count("patch", "configmaps"),
        PLANS as u64,
        "one patch per run"
    );
    assert_eq!(
        stats.count("update", "recoveryruns/status"),
        2 * PLANS as u64,
        "a status write before the patch and one with the outcome (the read before the \
         patch writes nothing of its own), none repeated"
    );
    assert_eq!(stats.count_code(409), 0, "no executor wrote over another");
}

/// The run's executor cannot go on (every status write is refused, so no step acts) and
/// gives up; the run controller retries it and completes it once the writes go through
/// again, and the effect happens once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_given_up_on_is_retried_and_completes_once() {
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c0", "namespace": "default"}, "data": {"from": "v0"}}))
        .unwrap();
    let ctl = Controller::start(client.clone());
    create(&client, plan(0), "default").await;
    wait_plan_validated(&client, "default", "p0").await;
    create(&client, alert(1), "default").await; // matches nothing: the caches are synced
    wait_alert_processed(&client, "default", "a1").await;

    sim.faults().set_status_conflict_rate(1.0);
    create(&client, alert(0), "default").await;
    // A reconcile gives up after at most 6 refused writes in each of 6 passes (a write and
    // 5 retries after re-reading the run): more than that means it was retried.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while sim.stats().count("update", "recoveryruns/status") <= 36 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run was not retried after its reconcile gave up: {} status writes",
            sim.stats().count("update", "recoveryruns/status")
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    sim.faults().clear();

    let name = naming::run_name("p0", "a0");
    let run = wait_run_finished(&client, "default", &name).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    let alert = wait_alert_processed(&client, "default", "a0").await;
    assert_eq!(alert.status.unwrap().runs, vec![name.clone()]);
    let cm = sim
        .get_object("v1", "configmaps", Some("default"), "c0")
        .unwrap();
    assert_eq!(cm["data"]["to"], "v0");
    ctl.stop().await;
    assert_eq!(sim.stats().count("patch", "configmaps"), 1, "one patch");
}

/// A run of reads changes nothing, so it costs one status write — its outcome, carrying
/// every read's start, outcome and outputs — and a restart would only read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_reads_is_written_once_with_every_steps_record() {
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c0", "namespace": "default"},
        "data": {"from": "v0", "to": "w0"}}))
        .unwrap();
    let ctl = Controller::start(client.clone());
    let read = |field: &str| {
        json!({"type": "readField", "readField": {"apiVersion": "v1", "resource": "configmaps",
            "namespace": "default", "name": "c0", "fieldPath": format!("data.{field}"),
            "outputKey": field}})
    };
    create(
        &client,
        json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
            "metadata": {"name": "p0", "namespace": "default"},
            "spec": {"alertLabels": {"shard": "s0"}, "steps": [read("from"), read("to")]}}),
        "default",
    )
    .await;
    wait_plan_validated(&client, "default", "p0").await;
    let writes_before = sim.stats().count("update", "recoveryruns/status");
    create(&client, alert(0), "default").await;

    let name = naming::run_name("p0", "a0");
    let run = wait_run_finished(&client, "default", &name).await;
    ctl.stop().await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    assert_eq!(rs.values["from"], "v0");
    assert_eq!(rs.values["to"], "w0");
    for s in &rs.steps {
        assert_eq!(s.phase, StepPhase::Succeeded, "{rs:#?}");
        assert_eq!(s.attempts, 1, "{rs:#?}");
        assert!(
            s.started_at.is_some() && s.finished_at.is_some(),
            "each read's start and end recorded: {rs:#?}"
        );
    }
    assert_eq!(
        sim.stats().count("update", "recoveryruns/status") - writes_before,
        1,
        "one status write: the outcome"
    );
}
