//! Recovery scenarios with the controller in-process, on the backend that
//! `LIFEBOAT_TEST_CLUSTER` chooses (the simulator by default). The scenarios themselves
//! are shared with the end-to-end tests of the binary (`lifeboat_testkit::scenarios`).
//! Also how lifeboat's API clients behave against that backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::scenarios::{self, no_diag};
use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, WatchParams};
use lifeboat_api::RunPhase;
use lifeboat_operator::api_client;
use lifeboat_testkit::config_from_kubeconfig;
use serde_json::json;

#[tokio::test]
async fn ferretdb_failover_across_three_clusters() {
    let home = TestCluster::start("mgmt").await;
    let mgmt = home.client();
    let db = TestCluster::start("db").await;
    let proxy = TestCluster::start("proxy").await;
    scenarios::ferretdb_clusters(&mgmt, &db, &proxy).await;
    let ctl = Controller::start(mgmt.clone());
    scenarios::ferretdb_failover(&mgmt, &db, &proxy, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn unknown_cluster_fails_the_step_with_a_clear_message() {
    let cluster = TestCluster::start("local").await;
    let client = cluster.client();
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
    let cluster = TestCluster::start("local").await;
    let client = cluster.client();
    let ctl = Controller::start(client.clone());
    scenarios::dry_run(&cluster, &client, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn steps_impersonate_the_plans_service_account() {
    let cluster = TestCluster::start("local").await;
    let client = cluster.client();
    let ctl = Controller::start(client.clone());
    scenarios::impersonation(&cluster, &client, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn invalid_plan_is_reported_and_never_runs() {
    let cluster = TestCluster::start("local").await;
    let client = cluster.client();
    let ctl = Controller::start(client.clone());
    scenarios::invalid_plan(&client, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn missing_field_and_missing_template_key_fail_the_run() {
    let cluster = TestCluster::start("local").await;
    let client = cluster.client();
    let ctl = Controller::start(client.clone());
    scenarios::missing_field_and_key(&cluster, &client, &no_diag).await;
    ctl.stop().await;
}

#[tokio::test]
async fn forbid_policy_records_a_skip_and_suspend_starts_nothing() {
    let cluster = TestCluster::start("local").await;
    let client = cluster.client();
    let ctl = Controller::start(client.clone());
    scenarios::forbid_and_suspend(&client, &no_diag).await;
    ctl.stop().await;
}

/// lifeboat's clients cap the requests they have in flight. A controller waiting on many
/// Jobs and conditions holds a watch for each: if open watches kept their slots, the cap
/// would stall every other request for good.
#[tokio::test]
async fn open_watches_leave_the_request_cap_to_other_requests() {
    let cluster = TestCluster::start_empty("cap", Backend::from_env()).await;
    let config = config_from_kubeconfig(cluster.kubeconfig_yaml()).await;
    let api = Api::<ConfigMap>::namespaced(api_client::build(config).unwrap(), "default");

    let watches = api_client::MAX_IN_FLIGHT + 8;
    let mut streams = Vec::new();
    for i in 0..watches {
        let stream = tokio::time::timeout(
            DEADLINE,
            api.watch(&WatchParams::default().timeout(290), "0"),
        )
        .await
        .unwrap_or_else(|_| panic!("watch {i} of {watches} never started"))
        .unwrap();
        streams.push(Box::pin(stream));
    }
    let listed = tokio::time::timeout(DEADLINE, api.list(&ListParams::default()))
        .await
        .expect("a list must not wait behind open watches");
    assert!(listed.is_ok(), "{listed:?}");
}
