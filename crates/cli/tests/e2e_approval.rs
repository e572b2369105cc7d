//! Approval steps through the real `lifeboat controller` and `lifeboat approve|reject`, on
//! the backend `LIFEBOAT_TEST_CLUSTER` chooses: the run pauses in `WaitingForApproval`,
//! continues when approved (recording who, as the API server knows them, and why), stops
//! `Aborted` when rejected, and applies `onTimeout` when nobody decides. That approvers
//! cannot claim someone else's name, and that approving needs RBAC, is shown on the real
//! control plane (`real_control_plane.rs`), whose admission policy enforces it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::events::v1::Event;
use kube::Api;
use lifeboat_api::{ApprovalDecision, RunPhase, StepPhase};
use lifeboat_testkit::scenarios::{self, create};
use lifeboat_testkit::wait::eventually;
use serde_json::{Value, json};

mod common;

use common::harness::{Harness, plan, pod_steps, stderr};

/// A plan gated by `approval`, then the seed's read and patch of `my-pod`.
fn gated_plan(name: &str, approval: Value, timeout: Option<&str>) -> Value {
    let mut gate = json!({"type": "approval", "title": "On-call approves", "approval": approval});
    if let Some(t) = timeout {
        gate["timeout"] = json!(t);
    }
    let mut steps = vec![gate];
    steps.extend(pod_steps());
    plan(name, steps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_run_continues_and_records_the_approver() {
    let s = Harness::start().await;
    let run = s
        .start_run(gated_plan(
            "approve",
            json!({"message": "fail over?"}),
            None,
        ))
        .await;
    s.wait_for_phase(&run, RunPhase::WaitingForApproval).await;
    assert_eq!(
        s.sidecar_image().await,
        "sidecar:old",
        "nothing after the gate ran yet"
    );

    let out = s
        .lifeboat(&["approve", &run, "--reason", "primary confirmed down"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let me = said.rsplit(" as ").next().unwrap().trim().to_string();
    assert!(!me.is_empty(), "the CLI names who approved: {said}");

    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}\n{}", s.ctl.diag());
    let approvals = &rs.steps[0].approvals;
    assert_eq!(approvals.len(), 1, "{rs:#?}");
    assert_eq!(
        approvals[0].approver, me,
        "the approver as the API server knows them"
    );
    assert_eq!(approvals[0].decision, ApprovalDecision::Approve);
    assert_eq!(
        approvals[0].reason.as_deref(),
        Some("primary confirmed down")
    );
    assert!(approvals[0].time.is_some());
    assert_eq!(
        s.sidecar_image().await,
        "example-image:v1",
        "the steps after the gate ran"
    );

    // An Event records the decision too: who, when and why.
    let events: Api<Event> = Api::namespaced(s.client.clone(), "default");
    let note = eventually("the Approved event", || async {
        events
            .list(&Default::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Approved"))
            .and_then(|e| e.note)
    })
    .await;
    assert!(
        note.contains(&format!("approved by {me} at ")) && note.contains("primary confirmed down"),
        "{note}"
    );

    let show = s.lifeboat(&["runs", "show", "-n", "default", &run]).await;
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains(&format!("approved by {me}")) && shown.contains("primary confirmed down"),
        "`runs show` lists the decision: {shown}"
    );

    let again = s.lifeboat(&["approve", &run]).await;
    assert!(!again.status.success(), "a finished run cannot be approved");
    assert!(
        stderr(&again).contains("is not waiting for approval"),
        "{}",
        stderr(&again)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_run_stops_and_changes_nothing() {
    let s = Harness::start().await;
    let run = s.start_run(gated_plan("reject", json!({}), None)).await;
    s.wait_for_phase(&run, RunPhase::WaitingForApproval).await;

    let out = s
        .lifeboat(&["reject", &run, "--reason", "it was only slow"])
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let rs = s.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Aborted, "{rs:#?}");
    let msg = rs.message.clone().unwrap_or_default();
    assert!(
        msg.contains("rejected by") && msg.contains("it was only slow"),
        "{msg}"
    );
    assert_eq!(rs.steps[0].approvals[0].decision, ApprovalDecision::Reject);
    assert!(rs.steps[1..].iter().all(|s| s.phase == StepPhase::Skipped));
    assert_eq!(s.sidecar_image().await, "sidecar:old");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_deciding_applies_the_declared_default() {
    let s = Harness::start().await;
    let rejected = s
        .start_run(gated_plan("timeout-reject", json!({}), Some("2s")))
        .await;
    let approved = s
        .start_run(gated_plan(
            "timeout-approve",
            json!({"onTimeout": "Approve"}),
            Some("2s"),
        ))
        .await;

    let rs = s.finished(&rejected).await;
    assert_eq!(
        rs.phase,
        RunPhase::Aborted,
        "the default is Reject: {rs:#?}"
    );
    let msg = rs.steps[0].message.clone().unwrap_or_default();
    assert!(
        msg.contains("rejected by default (onTimeout: Reject)"),
        "{msg}"
    );

    let rs = s.finished(&approved).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    let msg = rs.steps[0].message.clone().unwrap_or_default();
    assert!(
        msg.contains("approved by default (onTimeout: Approve)"),
        "{msg}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drill_treats_an_approval_as_granted_and_says_so() {
    let s = Harness::start().await;
    let mut run = scenarios::run(
        "drill-gated",
        gated_plan("x", json!({}), None)["spec"]["steps"].clone(),
    );
    run["spec"]["dryRun"] = json!(true);
    create(&s.client, run, "default").await;
    let rs = s.finished("drill-gated").await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    let msg = rs.steps[0].message.clone().unwrap_or_default();
    assert!(msg.contains("treated as granted"), "{msg}");
    assert_eq!(
        s.sidecar_image().await,
        "sidecar:old",
        "a drill changes nothing"
    );
    s.stop().await;
}
