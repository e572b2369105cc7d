//! Run control through the real `lifeboat controller` and `lifeboat runs cancel|retry`, on
//! the backend `LIFEBOAT_TEST_CLUSTER` chooses: a cancelled run ends `Cancelled` with
//! nothing after the step in flight run (a waiting step stops at once); a retried run
//! resumes at the step that failed, with the values it had, as a recorded new attempt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lifeboat_api::{ApprovalDecision, RunPhase, StepPhase};
use lifeboat_testkit::scenarios;
use lifeboat_testkit::wait::wait_step_running;
use serde_json::{Value, json};

mod common;

use common::harness::{Harness, plan, pod_steps, stderr, stdout};

fn approval_gate() -> Value {
    json!({"type": "approval", "title": "On-call approves", "approval": {}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_waiting_run_stops_it_at_once() {
    let s = Harness::start().await;
    let mut steps = vec![approval_gate()];
    steps.extend(pod_steps());
    let run = s.start_run(plan("cancel-waiting", steps)).await;
    s.wait_for_phase(&run, RunPhase::WaitingForApproval).await;

    let out = s.lifeboat(&["runs", "cancel", "-n", "default", &run]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Cancelled, "{rs:#?}");
    assert_eq!(rs.steps[0].phase, StepPhase::Cancelled, "{rs:#?}");
    assert!(
        rs.steps[1..]
            .iter()
            .all(|st| st.phase == StepPhase::Skipped),
        "{rs:#?}"
    );
    assert!(
        rs.message
            .as_deref()
            .unwrap_or_default()
            .contains("cancelled at step 1"),
        "{rs:#?}"
    );
    assert_eq!(
        s.sidecar_image().await,
        "sidecar:old",
        "nothing after it ran"
    );

    let again = s.lifeboat(&["runs", "cancel", "-n", "default", &run]).await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("has already finished (Cancelled)"),
        "{}",
        stderr(&again)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_lets_the_step_in_flight_finish_and_runs_nothing_after_it() {
    let s = Harness::start().await;
    // A Job that runs for a few seconds (the simulator's Job controller reads the
    // annotation, the real control plane's node runs the `sleep`).
    let job = json!({"type": "job", "title": "Slow job", "job": {"template": {
        "metadata": {"annotations": {"sim.lifeboat.dev/duration": "3s"}},
        "spec": {"containers": [{"name": "slow", "image": "busybox",
            "command": ["sh", "-c", "sleep 3"]}], "restartPolicy": "Never"}}}});
    let mut steps = vec![job];
    steps.extend(pod_steps());
    let run = s.start_run(plan("cancel-in-flight", steps)).await;
    wait_step_running(&s.client, &run, 0, &|| s.ctl.diag()).await;

    let out = s.lifeboat(&["runs", "cancel", "-n", "default", &run]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Cancelled, "{rs:#?}\n{}", s.ctl.diag());
    assert_eq!(
        rs.steps[0].phase,
        StepPhase::Succeeded,
        "the step in flight finished: {rs:#?}"
    );
    assert!(
        rs.steps[1..]
            .iter()
            .all(|st| st.phase == StepPhase::Skipped),
        "{rs:#?}"
    );
    let msg = rs.message.clone().unwrap_or_default();
    assert!(msg.contains("cancelled after step 1 of 3"), "{msg}");
    assert_eq!(s.sidecar_image().await, "sidecar:old");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_resumes_a_failed_run_at_the_failed_step_with_its_values() {
    let s = Harness::start().await;
    s.cluster.apply(scenarios::configmap("go", json!({}))).await;
    let mut steps = pod_steps();
    // Between the read and the patch: a read that fails until someone sets `data.ok`.
    steps.insert(
        1,
        json!({"type": "readField", "title": "Operator says go", "readField": {
            "apiVersion": "v1", "resource": "configmaps", "namespace": "default",
            "name": "go", "fieldPath": "data.ok", "outputKey": "go"}}),
    );
    let run = s.start_run(plan("retry-failed", steps)).await;
    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Failed, "{rs:#?}");
    assert_eq!(rs.current_step, Some(1));

    s.cluster
        .apply(scenarios::configmap("go", json!({"ok": "yes"})))
        .await;
    let out = s.lifeboat(&["runs", "retry", "-n", "default", &run]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("as attempt 2, from step 2"),
        "{}",
        stdout(&out)
    );
    s.wait_for_phase(&run, RunPhase::Completed).await;
    let rs = s.finished(&run).await;
    assert_eq!(rs.attempt, Some(2));
    assert_eq!(rs.previous_attempts.len(), 1, "{rs:#?}");
    let first = &rs.previous_attempts[0];
    assert_eq!(
        (first.attempt, first.phase, first.failed_step),
        (1, RunPhase::Failed, Some(1))
    );
    assert!(
        first
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("data.ok"),
        "{first:?}"
    );
    assert_eq!(
        rs.steps[0].attempts, 1,
        "the step that succeeded did not run again"
    );
    assert_eq!(rs.steps[1].attempts, 2, "the failed step ran again");
    assert_eq!(rs.values["podImage"], "example-image:v1", "values kept");
    assert_eq!(rs.values["go"], "yes");
    assert_eq!(s.sidecar_image().await, "example-image:v1");

    let show = s.lifeboat(&["runs", "show", "-n", "default", &run]).await;
    assert!(
        stdout(&show).contains("attempt 1: Failed"),
        "{}",
        stdout(&show)
    );
    let again = s.lifeboat(&["runs", "retry", "-n", "default", &run]).await;
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("only a Failed or Aborted run can be retried"),
        "{}",
        stderr(&again)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_rejected_run_asks_again_and_old_decisions_do_not_count() {
    let s = Harness::start().await;
    let mut steps = vec![approval_gate()];
    steps.extend(pod_steps());
    let run = s.start_run(plan("retry-rejected", steps)).await;
    s.wait_for_phase(&run, RunPhase::WaitingForApproval).await;
    let out = s.lifeboat(&["reject", &run, "--reason", "not yet"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.finished(&run).await.phase, RunPhase::Aborted);

    let out = s.lifeboat(&["runs", "retry", "-n", "default", &run]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // The earlier rejection is on attempt 1: the run waits for a decision on attempt 2.
    s.wait_for_phase(&run, RunPhase::WaitingForApproval).await;
    let out = s.lifeboat(&["approve", &run, "--reason", "now"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    let decisions: Vec<_> = rs.steps[0].approvals.iter().map(|a| a.decision).collect();
    assert_eq!(decisions, [ApprovalDecision::Approve], "{rs:#?}");
    assert_eq!(rs.previous_attempts[0].phase, RunPhase::Aborted);
    assert_eq!(s.sidecar_image().await, "example-image:v1");
    s.stop().await;
}

/// A finally step recording how the run ended into ConfigMap `report`'s `data.KEY`.
fn report(key: &str, template: &str) -> Value {
    json!({"type": "patch", "title": format!("Report {key}"), "patch": {
        "apiVersion": "v1", "resource": "configmaps", "namespace": "default", "name": "report",
        "override": {"fieldPath": format!("data.{key}"), "value": {"raw": template}},
        "patchType": "application/merge-patch+json"}})
}

async fn reported(s: &Harness, key: &str) -> Value {
    s.cluster
        .get("v1", "configmaps", Some("default"), "report")
        .await
        .unwrap()["data"][key]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finally_steps_run_whatever_the_outcome_and_see_it() {
    let s = Harness::start().await;
    s.cluster
        .apply(scenarios::configmap("report", json!({})))
        .await;
    s.cluster.apply(scenarios::configmap("go", json!({}))).await;
    let blocked = json!({"type": "readField", "title": "Operator says go", "readField": {
        "apiVersion": "v1", "resource": "configmaps", "namespace": "default",
        "name": "go", "fieldPath": "data.ok", "outputKey": "go"}});

    // Completed: the finally step sees the outcome and the steps' values.
    let mut p = plan("finally-ok", pod_steps());
    p["spec"]["finally"] = json!([report("ok", "{{ .Run.Phase }} {{ .Values.podImage }}")]);
    let ok = s.start_run(p).await;
    // Failed at step 2: the finally step still runs.
    let mut steps = pod_steps();
    steps.insert(1, blocked);
    let mut p = plan("finally-failed", steps);
    p["spec"]["finally"] = json!([report("failed", "{{ .Run.Phase }}")]);
    let failed = s.start_run(p).await;
    // Cancelled while waiting for approval: the finally step still runs.
    let mut steps = vec![approval_gate()];
    steps.extend(pod_steps());
    let mut p = plan("finally-cancelled", steps);
    p["spec"]["finally"] = json!([report("cancelled", "{{ .Run.Phase }}")]);
    let cancelled = s.start_run(p).await;

    let rs = s.finished(&ok).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    assert_eq!(rs.finally[0].phase, StepPhase::Succeeded, "{rs:#?}");
    assert_eq!(reported(&s, "ok").await, "Completed example-image:v1");

    let rs = s.finished(&failed).await;
    assert_eq!(rs.phase, RunPhase::Failed, "{rs:#?}");
    assert_eq!(rs.steps[2].phase, StepPhase::Skipped);
    assert_eq!(rs.finally[0].phase, StepPhase::Succeeded, "{rs:#?}");
    assert_eq!(reported(&s, "failed").await, "Failed");

    s.wait_for_phase(&cancelled, RunPhase::WaitingForApproval)
        .await;
    let out = s
        .lifeboat(&["runs", "cancel", "-n", "default", &cancelled])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rs = s.finished(&cancelled).await;
    assert_eq!(rs.phase, RunPhase::Cancelled, "{rs:#?}");
    assert_eq!(reported(&s, "cancelled").await, "Cancelled");
    assert_eq!(
        rs.outcome, None,
        "the outcome is the phase once finally is done"
    );

    let show = s
        .lifeboat(&["runs", "show", "-n", "default", &cancelled])
        .await;
    assert!(stdout(&show).contains("Finally:"), "{}", stdout(&show));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_finally_step_fails_a_completed_run_and_the_others_still_run() {
    let s = Harness::start().await;
    s.cluster
        .apply(scenarios::configmap("report", json!({})))
        .await;
    let mut p = plan("finally-breaks", pod_steps());
    p["spec"]["finally"] = json!([
        {"type": "readField", "title": "Read a missing field", "readField": {
            "apiVersion": "v1", "resource": "configmaps", "namespace": "default",
            "name": "report", "fieldPath": "data.missing", "outputKey": "missing"}},
        report("after", "{{ .Run.Phase }}")
    ]);
    let run = s.start_run(p).await;
    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Failed, "{rs:#?}");
    assert!(
        rs.steps.iter().all(|st| st.phase == StepPhase::Succeeded),
        "{rs:#?}"
    );
    assert_eq!(rs.finally[0].phase, StepPhase::Failed);
    assert_eq!(
        rs.finally[1].phase,
        StepPhase::Succeeded,
        "the next finally step ran"
    );
    let msg = rs.message.clone().unwrap_or_default();
    assert!(msg.contains("finally step 1 failed"), "{msg}");
    assert_eq!(
        reported(&s, "after").await,
        "Completed",
        "finally steps see how the steps ended"
    );
    s.stop().await;
}
