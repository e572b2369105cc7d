//! Registered clusters follow their Secrets (a new kubeconfig rebuilds the client; plans
//! naming clusters are validated again when the set of clusters changes), and runs leave
//! Kubernetes Events behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::scenarios::{self, cluster_secret, configmap};
use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use lifeboat_api::{RecoveryPlan, RunPhase};
use serde_json::json;

fn read_where(name: &str) -> serde_json::Value {
    scenarios::run(
        name,
        json!([{"type": "readField", "cluster": "far", "timeout": "5s",
            "retries": {"limit": 6, "backoff": "200ms"},
            "readField": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default",
                "name": "site", "fieldPath": "data.where", "outputKey": "where"}}]),
    )
}

#[tokio::test]
async fn a_new_kubeconfig_in_the_cluster_secret_rebuilds_the_client() {
    let (_home_sim, home) = start_cluster("home").await;
    let old = TestCluster::start_on("old-far", Backend::Sim).await;
    let new = TestCluster::start_on("new-far", Backend::Sim).await;
    old.sim()
        .unwrap()
        .apply_object(configmap("site", json!({"where": "old"})))
        .unwrap();
    new.sim()
        .unwrap()
        .apply_object(configmap("site", json!({"where": "new"})))
        .unwrap();
    register_cluster(&home, "far", &old).await;
    let ctl = Controller::start(home.clone());

    create(&home, read_where("before"), "default").await;
    let rs = wait_run_finished(&home, "default", "before")
        .await
        .status
        .unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    assert_eq!(rs.values["where"], "old");

    // The cluster moves: its Secret now points at the new server, and the old one is gone.
    let secret = cluster_secret("far", &new);
    Api::<Secret>::namespaced(home.clone(), LIFEBOAT_NS)
        .patch(
            secret.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": secret.data})),
        )
        .await
        .unwrap();
    old.sim().unwrap().faults().set_unreachable(true);

    create(&home, read_where("after"), "default").await;
    let rs = wait_run_finished(&home, "default", "after")
        .await
        .status
        .unwrap();
    assert_eq!(
        rs.phase,
        RunPhase::Completed,
        "the step must reach the cluster's new server: {rs:#?}"
    );
    assert_eq!(rs.values["where"], "new", "read from the new server");
    ctl.stop().await;
}

#[tokio::test]
async fn plans_are_validated_again_when_clusters_are_registered_or_removed() {
    let (_home_sim, home) = start_cluster("home").await;
    let far = TestCluster::start_on("far", Backend::Sim).await;
    let ctl = Controller::start(home.clone());
    let steps = json!([{"type": "readField", "cluster": "far",
        "readField": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default",
            "name": "site", "fieldPath": "data.where", "outputKey": "where"}}]);
    create(
        &home,
        scenarios::plan("remote", json!({"app": "db"}), steps),
        "default",
    )
    .await;
    let plan = wait_plan_validated(&home, "default", "remote").await;
    let status = plan.status.unwrap();
    assert_eq!(status.validation.as_deref(), Some("Invalid"), "{status:?}");
    assert!(
        status.problems.iter().any(|p| p.contains("far")),
        "the problem names the unknown cluster: {:?}",
        status.problems
    );

    let validation_is = |want: &'static str| {
        move |p: Option<&RecoveryPlan>| {
            p.and_then(|p| p.status.as_ref())
                .is_some_and(|s| s.validation.as_deref() == Some(want))
        }
    };
    let plans: Api<RecoveryPlan> = Api::namespaced(home.clone(), "default");
    register_cluster(&home, "far", &far).await;
    let plan = await_object(plans.clone(), "remote", validation_is("Valid")).await;
    assert!(
        plan.is_some(),
        "registering the cluster must make the plan Valid without waiting for the periodic check"
    );

    Api::<Secret>::namespaced(home.clone(), LIFEBOAT_NS)
        .delete("cluster-far", &DeleteParams::default())
        .await
        .unwrap();
    let plan = await_object(plans, "remote", validation_is("Invalid")).await;
    assert!(
        plan.is_some(),
        "removing the cluster must make the plan Invalid again"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn a_run_records_events_for_its_start_steps_and_completion() {
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(seed_pod()).unwrap();
    let ctl = Controller::start(client.clone());
    create(
        &client,
        scenarios::run("evented", scenarios::pod_steps()),
        "default",
    )
    .await;
    let rs = wait_run_finished(&client, "default", "evented")
        .await
        .status
        .unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");

    // Events are published in the background: wait until all of them are there.
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let want = ["StepSucceeded", "RunCompleted"];
    let deadline = Instant::now() + DEADLINE;
    let reasons = loop {
        let list = events.list(&ListParams::default()).await.unwrap();
        let reasons: Vec<(String, String, String)> = list
            .items
            .iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("evented")
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("RecoveryRun")
            })
            .map(|e| {
                (
                    e.reason.clone().unwrap_or_default(),
                    e.type_.clone().unwrap_or_default(),
                    e.note.clone().unwrap_or_default(),
                )
            })
            .collect();
        if want.iter().all(|w| reasons.iter().any(|(r, _, _)| r == w)) {
            break reasons;
        }
        assert!(
            Instant::now() < deadline,
            "events {want:?} not all recorded for the run; found {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        reasons.iter().all(|(_, t, _)| t == "Normal"),
        "a successful run records only Normal events: {reasons:?}"
    );
    let step_notes: Vec<&str> = reasons
        .iter()
        .filter(|(r, _, _)| r == "StepSucceeded")
        .map(|(_, _, n)| n.as_str())
        .collect();
    assert!(
        step_notes.iter().any(|n| n.starts_with("step 1 "))
            && step_notes.iter().any(|n| n.starts_with("step 2 ")),
        "one StepSucceeded event per step: {step_notes:?}"
    );
    // A quick step's start is reported by its outcome's Event, not by an Event of its own
    // (one write instead of two per step).
    assert!(
        step_notes
            .iter()
            .all(|n| n.contains(" started; step ") && n.ends_with("succeeded")),
        "each StepSucceeded event also says when the step started: {step_notes:?}"
    );
    assert!(
        !reasons
            .iter()
            .any(|(r, _, _)| r == "StepStarted" || r == "RunStarted"),
        "a quick run and its steps have no Started Events of their own: {reasons:?}"
    );
    let completed: Vec<&str> = reasons
        .iter()
        .filter(|(r, _, _)| r == "RunCompleted")
        .map(|(_, _, n)| n.as_str())
        .collect();
    assert!(
        completed.len() == 1 && completed[0].starts_with("executing 2 step(s); "),
        "the run's outcome Event also says it started: {completed:?}"
    );
    ctl.stop().await;
}
