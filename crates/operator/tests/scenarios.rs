//! Recovery scenarios against simulated clusters, with the controller in-process. The
//! scenarios themselves are shared with the end-to-end tests of the binary
//! (`common::scenarios`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::scenarios::{self, no_diag};
use common::*;
use lifeboat_api::RunPhase;
use serde_json::json;

#[tokio::test]
async fn ferretdb_failover_across_three_clusters() {
    let (_mgmt_sim, mgmt) = start_cluster("mgmt").await;
    let db = scenarios::sim_cluster("db").await;
    let proxy = scenarios::sim_cluster("proxy").await;
    scenarios::ferretdb_clusters(&mgmt, &db, &proxy).await;
    let ctl = Controller::start(mgmt.clone());
    scenarios::ferretdb_failover(&mgmt, &db, &proxy, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn unknown_cluster_fails_the_step_with_a_clear_message() {
    let (_sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    let steps = json!([{"type": "readField", "cluster": "atlantis",
        "readField": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default",
                      "name": "c", "fieldPath": "data.x", "outputKey": "x"}}]);
    create(&client, scenarios::run("to-nowhere", steps), "default").await;
    let run = wait_run_finished(&client, "default", "to-nowhere").await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Failed);
    let msg = rs.steps[0].message.clone().unwrap();
    assert!(
        msg.contains("cluster \"atlantis\" is not registered")
            && msg.contains("recovery.elotl.co/secret-type=cluster")
            && msg.contains(LIFEBOAT_NS),
        "{msg}"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn dry_run_records_rendered_patches_and_changes_nothing() {
    let (sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    scenarios::dry_run(&sim, &client, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn steps_impersonate_the_plans_service_account() {
    let (sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    scenarios::impersonation(&sim, &client, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn invalid_plan_is_reported_and_never_runs() {
    let (_sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    scenarios::invalid_plan(&client, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn missing_field_and_missing_template_key_fail_the_run() {
    let (sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    scenarios::missing_field_and_key(&sim, &client, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn forbid_policy_records_a_skip_and_suspend_starts_nothing() {
    let (_sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    scenarios::forbid_and_suspend(&client, &no_diag).await;
    ctl.stop().await;
}
