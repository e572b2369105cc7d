//! Failures the executor must report clearly, and API faults it must ride out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kube::api::{Api, Patch, PatchParams};
use lifeboat_api::{RecoveryPlan, RunPhase, StepPhase};
use lifeboat_operator::naming;
use serde_json::json;

fn run(name: &str, steps: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
        "metadata": {"name": name},
        "spec": {"alertSpec": {"name": "x", "labels": {}}, "steps": steps}})
}

#[tokio::test]
async fn failed_job_reports_its_reason_and_skips_later_steps() {
    let (_sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    let steps = json!([
        {"type": "job", "job": {"template": {
            "metadata": {"annotations": {"sim.lifeboat.dev/outcome": "Fail"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
            "namespace": "default", "name": "p", "fieldPath": "spec", "outputKey": "x"}}
    ]);
    create(&client, run("failing-job", steps), "default").await;
    let r = wait_run_finished(&client, "default", "failing-job").await;
    let rs = r.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Failed);
    let msg = rs.steps[0].message.clone().unwrap();
    assert!(
        msg.contains(&naming::job_name("failing-job", 0)) && msg.contains("BackoffLimitExceeded"),
        "{msg}"
    );
    assert_eq!(rs.steps[1].phase, StepPhase::Skipped);
    let cond = &rs.conditions[0];
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("False", Some("Failed"))
    );
    ctl.stop().await;
}

#[tokio::test]
async fn unreachable_cluster_is_named_in_the_failure() {
    let (_home_sim, home) = start_cluster("home").await;
    let far = TestCluster::start_on("far", Backend::Sim).await;
    register_cluster(&home, "far", &far).await;
    far.sim().unwrap().faults().set_unreachable(true);
    let ctl = Controller::start(home.clone());
    let steps = json!([{"type": "readField", "cluster": "far", "timeout": "5s",
        "readField": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default",
            "name": "c", "fieldPath": "data.x", "outputKey": "x"}}]);
    create(&home, run("far-away", steps), "default").await;
    let r = wait_run_finished(&home, "default", "far-away").await;
    let rs = r.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Failed);
    let msg = rs.steps[0].message.clone().unwrap();
    assert!(
        msg.contains("\"far\""),
        "the message must name the cluster: {msg}"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn runs_complete_through_api_faults_and_record_the_plans_last_run() {
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(seed_pod()).unwrap();
    let ctl = Controller::start(client.clone());
    create(&client, yaml(SEED_PLAN), "default").await;
    sim.faults().set_error_rate(None, 0.1);
    sim.faults().set_throttle_rate(0.05, 1);
    sim.faults().set_status_conflict_rate(0.1);
    // Written straight into the store: the faults are for the controller, not for this setup.
    let mut alert = yaml(SEED_ALERT);
    alert["metadata"]["namespace"] = "default".into();
    sim.apply_object(alert).unwrap();
    let run_name = naming::run_name("example-recoveryplan", "example-received-alert");
    let r = wait_run_finished(&client, "default", &run_name).await;
    sim.faults().clear();
    let rs = r.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    let pod = sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "example-image:v1");

    let api: Api<RecoveryPlan> = Api::namespaced(client.clone(), "default");
    let name = run_name.clone();
    await_object(
        api,
        "example-recoveryplan",
        move |p: Option<&RecoveryPlan>| {
            p.and_then(|p| p.status.as_ref()).is_some_and(|s| {
                s.last_run.as_deref() == Some(name.as_str())
                    && s.last_run_phase.as_deref() == Some("Completed")
            })
        },
    )
    .await
    .expect("the plan must record its last run");
    ctl.stop().await;
}

#[tokio::test]
async fn a_plan_deleted_while_the_watches_are_expired_no_longer_matches() {
    let (sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    let steps = json!([{"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
        "namespace": "default", "name": "p", "fieldPath": "spec", "outputKey": "x"}}]);
    for name in ["kept", "gone"] {
        let plan = json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
            "metadata": {"name": name}, "spec": {"alertLabels": {"app": "db"}, "steps": steps}});
        create(&client, plan, "default").await;
        wait_plan_validated(&client, "default", name).await;
    }
    // The watches break and the history is compacted: the deletion can only be learnt from
    // a fresh listing.
    sim.faults().expire_watches();
    let plans = Api::<RecoveryPlan>::namespaced(client.clone(), "default");
    plans.delete("gone", &Default::default()).await.unwrap();
    // A later change to the other plan: once the controller has seen it, it has seen the
    // deletion too (by event or by re-listing).
    plans
        .patch(
            "kept",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"cooldown": "1s"}})),
        )
        .await
        .unwrap();
    wait_plan_validated(&client, "default", "kept").await;
    let alert = json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
        "metadata": {"name": "late"}, "spec": {"labels": {"app": "db"}}});
    create(&client, alert, "default").await;
    let status = wait_alert_processed(&client, "default", "late")
        .await
        .status
        .unwrap();
    assert_eq!(
        status.matched_plans,
        vec!["kept"],
        "a deleted plan must not match: {status:?}"
    );
    ctl.stop().await;
}
