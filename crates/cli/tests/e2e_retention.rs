//! Retention through the real `lifeboat controller` binary: a processed ReceivedAlert is deleted once
//! `--alert-retention` has passed, and the same alert arriving again after that starts
//! nothing new (its run's name derives from plan and alert, and the run is kept).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kube::api::{Api, ListParams};
use lifeboat_api::{RecoveryRun, RunPhase};
use lifeboat_operator::naming;

const ALERTS: &str = "recovery.elotl.co/v1alpha1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_alerts_are_deleted_after_their_retention_and_a_resend_starts_nothing() {
    let cluster = Cluster::start("local").await;
    cluster.sim.apply_object(seed_pod()).unwrap();
    let ctl = replica(
        &cluster,
        0,
        &[
            "--no-webhook",
            "--no-leader-election",
            "--alert-retention",
            "2s",
        ],
    )
    .await;
    cluster.create(yaml(SEED_PLAN)).await;
    lifeboat_testkit::wait::wait_plan_validated(
        &cluster.client(),
        "default",
        "example-recoveryplan",
        &|| ctl.diag(),
    )
    .await;
    cluster.create(yaml(SEED_ALERT)).await;

    let run_name = naming::run_name("example-recoveryplan", "example-received-alert");
    let run = cluster.wait_run_finished(&run_name, &ctl).await;
    assert_eq!(run.status.as_ref().unwrap().phase, RunPhase::Completed);
    let uid = run.metadata.uid.clone();

    let gone = || async {
        cluster
            .get(
                ALERTS,
                "receivedalerts",
                Some("default"),
                "example-received-alert",
            )
            .await
            .is_none()
            .then_some(())
    };
    eventually(
        "the processed alert to be deleted after its retention",
        gone,
    )
    .await;

    // Alertmanager sends the still-firing alert again: it is processed again (and deleted
    // again), and the recovery is not started a second time.
    cluster.create(yaml(SEED_ALERT)).await;
    eventually("the re-sent alert to be processed and deleted", gone).await;
    let runs: Api<RecoveryRun> = Api::namespaced(cluster.client(), "default");
    let all = runs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(all.len(), 1, "{all:#?}\n{}", ctl.log_text());
    assert_eq!(all[0].metadata.uid, uid, "the run is the first one");
    ctl.terminate().await;
}
