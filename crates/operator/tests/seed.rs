//! The seed examples, applied verbatim, behave as the seed describes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use lifeboat_api::conditions::{MESSAGE_COMPLETED, REASON_COMPLETED, STATUS_TRUE, TYPE_SUCCESS};
use lifeboat_api::{RunPhase, StepPhase};
use lifeboat_operator::naming;

#[tokio::test]
async fn seed_plan_and_alert_run_to_completion() {
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(seed_pod()).unwrap();
    let ctl = Controller::start(client.clone());

    create(&client, yaml(SEED_PLAN), "default").await;
    create(&client, yaml(SEED_ALERT), "default").await;

    let alert = wait_alert_processed(&client, "default", "example-received-alert").await;
    let status = alert.status.unwrap();
    let run_name = naming::run_name("example-recoveryplan", "example-received-alert");
    assert_eq!(status.matched_plans, vec!["example-recoveryplan"]);
    assert_eq!(
        status.runs,
        vec![run_name.clone()],
        "alert status: {status:?}"
    );

    let run = wait_run_finished(&client, "default", &run_name).await;
    let rs = run.status.clone().unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "run status: {rs:#?}");
    assert_eq!(rs.values["podImage"], "example-image:v1");
    assert_eq!(rs.progress.as_deref(), Some("3/3"));
    assert!(
        rs.steps
            .iter()
            .all(|s| s.phase == StepPhase::Succeeded && s.attempts == 1)
    );
    assert_eq!(rs.conditions.len(), 1, "{:?}", rs.conditions);
    let c = &rs.conditions[0];
    assert_eq!(c.type_, TYPE_SUCCESS);
    assert_eq!(c.status, STATUS_TRUE);
    assert_eq!(c.reason.as_deref(), Some(REASON_COMPLETED));
    assert_eq!(c.message.as_deref(), Some(MESSAGE_COMPLETED));
    assert!(c.last_probe_time.is_some() && c.last_transition_time.is_some());
    assert!(rs.finished_at.is_some() && rs.started_at.is_some());

    let pod = sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(
        pod["spec"]["containers"][1]["image"], "example-image:v1",
        "the second container must be patched to the first one's image"
    );

    let job_name = naming::job_name(&run_name, 2);
    assert_eq!(rs.steps[2].job_name.as_deref(), Some(job_name.as_str()));
    let job = Api::<Job>::namespaced(client.clone(), "default")
        .get(&job_name)
        .await
        .unwrap();
    let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(
        container.command.clone().unwrap(),
        vec!["sh", "-c", "echo Updating to image example-image:v1"]
    );

    let plan = wait_plan_validated(&client, "default", "example-recoveryplan").await;
    let ps = plan.status.unwrap();
    assert_eq!(ps.validation.as_deref(), Some("Valid"), "{ps:?}");
    assert_eq!(ps.step_count, Some(3));
    ctl.stop().await;
}

#[tokio::test]
async fn hand_written_seed_run_executes() {
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(seed_pod()).unwrap();
    let ctl = Controller::start(client.clone());

    let mut run = yaml(SEED_RUN);
    run.as_object_mut().unwrap().remove("status");
    create(&client, run, "default").await;

    let run = wait_run_finished(&client, "default", "example-recoveryrun").await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "run status: {rs:#?}");
    assert_eq!(rs.values["podImage"], "example-image:v1");
    let pod = sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "example-image:v1");
    ctl.stop().await;
}
