//! The acceptance scenarios (multi-cluster failover, dry run, impersonation, invalid input,
//! concurrency and suspension) through the real `lifeboat controller` binary, on the
//! backend that `LIFEBOAT_TEST_CLUSTER` chooses (the simulator by default, a real control
//! plane with `kube`). The scenarios are the ones the operator's in-process tests run
//! (`lifeboat_testkit::scenarios`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lifeboat_testkit::{ControllerProcess, TestCluster, scenarios};

mod common;

/// `lifeboat controller` against `cluster` (no webhook, no leader election).
async fn controller(cluster: &TestCluster) -> ControllerProcess {
    common::controller(cluster, 0).await
}

#[tokio::test]
async fn ferretdb_failover_across_three_clusters() {
    let home = TestCluster::start("mgmt").await;
    let db = TestCluster::start("db").await;
    let proxy = TestCluster::start("proxy").await;
    scenarios::ferretdb_clusters(&home.client(), &db, &proxy).await;
    let ctl = controller(&home).await;
    scenarios::ferretdb_failover(&home.client(), &db, &proxy, &|| ctl.diag()).await;
    ctl.assert_no_panic();
    ctl.terminate().await;
}

#[tokio::test]
async fn dry_run_records_rendered_patches_and_changes_nothing() {
    let cluster = TestCluster::start("local").await;
    let ctl = controller(&cluster).await;
    scenarios::dry_run(&cluster, &cluster.client(), &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn steps_impersonate_the_plans_service_account() {
    let cluster = TestCluster::start("local").await;
    let ctl = controller(&cluster).await;
    scenarios::impersonation(&cluster, &cluster.client(), &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn invalid_plan_is_reported_and_never_runs() {
    let cluster = TestCluster::start("local").await;
    let ctl = controller(&cluster).await;
    scenarios::invalid_plan(&cluster.client(), &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn missing_field_and_missing_template_key_fail_the_run() {
    let cluster = TestCluster::start("local").await;
    let ctl = controller(&cluster).await;
    scenarios::missing_field_and_key(&cluster, &cluster.client(), &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn forbid_policy_records_a_skip_and_suspend_starts_nothing() {
    let cluster = TestCluster::start("local").await;
    let ctl = controller(&cluster).await;
    scenarios::forbid_and_suspend(&cluster.client(), &|| ctl.diag()).await;
    ctl.terminate().await;
}

#[tokio::test]
async fn a_check_aborts_before_changing_anything_and_passes_on_evidence() {
    let home = TestCluster::start("mgmt").await;
    let db = TestCluster::start("db").await;
    scenarios::register_cluster(&home.client(), "db", &db).await;
    scenarios::register_unreachable_cluster(&home.client(), "gone", &db).await;
    let ctl = controller(&home).await;
    scenarios::guarded_failover(&home.client(), &db, &|| ctl.diag()).await;
    scenarios::quorum_not_met(&home.client(), &|| ctl.diag()).await;
    ctl.assert_no_panic();
    ctl.terminate().await;
}
