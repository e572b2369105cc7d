//! The seed examples through the real `lifeboat controller` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use lifeboat_api::conditions::{MESSAGE_COMPLETED, REASON_COMPLETED, STATUS_TRUE, TYPE_SUCCESS};
use lifeboat_api::{RunPhase, StepPhase};
use lifeboat_operator::naming;

#[tokio::test]
async fn seed_plan_and_alert_applied_verbatim_complete() {
    let cluster = Cluster::start("local").await;
    cluster.sim.apply_object(seed_pod()).unwrap();
    let ctl = controller(&cluster, 0).await;
    cluster.create(yaml(SEED_PLAN)).await;
    cluster.create(yaml(SEED_ALERT)).await;

    let run_name = naming::run_name("example-recoveryplan", "example-received-alert");
    let run = cluster.wait_run_finished(&run_name, &ctl).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}\n{}", ctl.log_text());
    assert_eq!(rs.values["podImage"], "example-image:v1");
    assert!(rs.steps.iter().all(|s| s.phase == StepPhase::Succeeded));
    assert_eq!(rs.conditions.len(), 1);
    let c = &rs.conditions[0];
    assert_eq!(
        (
            c.type_.as_str(),
            c.status.as_str(),
            c.reason.as_deref(),
            c.message.as_deref()
        ),
        (
            TYPE_SUCCESS,
            STATUS_TRUE,
            Some(REASON_COMPLETED),
            Some(MESSAGE_COMPLETED)
        )
    );
    assert!(c.last_probe_time.is_some() && c.last_transition_time.is_some());

    let pod = cluster
        .sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "example-image:v1");
    let job = Api::<Job>::namespaced(cluster.client.clone(), "default")
        .get(&naming::job_name(&run_name, 2))
        .await
        .unwrap();
    assert_eq!(
        job.spec.unwrap().template.spec.unwrap().containers[0]
            .command
            .clone()
            .unwrap(),
        vec!["sh", "-c", "echo Updating to image example-image:v1"]
    );
    let alert = cluster
        .sim
        .get_object(
            "recovery.elotl.co/v1alpha1",
            "receivedalerts",
            Some("default"),
            "example-received-alert",
        )
        .unwrap();
    assert_eq!(alert["status"]["processed"], true);
    assert_eq!(alert["status"]["runs"][0], run_name.as_str());
    ctl.terminate().await;
}

#[tokio::test]
async fn hand_written_seed_run_executes() {
    let cluster = Cluster::start("local").await;
    cluster.sim.apply_object(seed_pod()).unwrap();
    let ctl = controller(&cluster, 0).await;
    let mut run = yaml(SEED_RUN);
    run.as_object_mut().unwrap().remove("status");
    cluster.create(run).await;
    let run = cluster.wait_run_finished("example-recoveryrun", &ctl).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    assert_eq!(rs.values["podImage"], "example-image:v1");
    ctl.terminate().await;
}
