//! The acceptance scenarios (multi-cluster failover, dry run, impersonation, invalid input,
//! concurrency and suspension) through the real `lifeboat controller` binary. The scenarios
//! are the ones the operator's in-process tests run (`common::scenarios`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::scenarios;
use common::*;

#[tokio::test]
async fn ferretdb_failover_across_three_clusters() {
    let home = Cluster::start("mgmt").await;
    let db = scenarios::sim_cluster("db").await;
    let proxy = scenarios::sim_cluster("proxy").await;
    scenarios::ferretdb_clusters(&home.client, &db, &proxy).await;
    let ctl = Controller::start(&home, 0).await;
    scenarios::ferretdb_failover(&home.client, &db, &proxy, &|| ctl.diag()).await;
    ctl.assert_no_panic();
    ctl.terminate().await;
}

#[tokio::test]
async fn dry_run_records_rendered_patches_and_changes_nothing() {
    let cluster = Cluster::start("local").await;
    let ctl = Controller::start(&cluster, 0).await;
    scenarios::dry_run(&cluster.sim, &cluster.client, &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn steps_impersonate_the_plans_service_account() {
    let cluster = Cluster::start("local").await;
    let ctl = Controller::start(&cluster, 0).await;
    scenarios::impersonation(&cluster.sim, &cluster.client, &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn invalid_plan_is_reported_and_never_runs() {
    let cluster = Cluster::start("local").await;
    let ctl = Controller::start(&cluster, 0).await;
    scenarios::invalid_plan(&cluster.client, &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn missing_field_and_missing_template_key_fail_the_run() {
    let cluster = Cluster::start("local").await;
    let ctl = Controller::start(&cluster, 0).await;
    scenarios::missing_field_and_key(&cluster.sim, &cluster.client, &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn forbid_policy_records_a_skip_and_suspend_starts_nothing() {
    let cluster = Cluster::start("local").await;
    let ctl = Controller::start(&cluster, 0).await;
    scenarios::forbid_and_suspend(&cluster.client, &|| ctl.diag()).await;
    ctl.terminate().await;
}
