//! Crash safety: the controller process SIGKILLed mid-run and restarted finishes the run,
//! with the Job created once and no step skipped or repeated beyond the one in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use lifeboat_api::{LABEL_RUN, RunPhase, StepPhase};
use lifeboat_operator::naming;
use serde_json::json;

/// read the first image → patch the second container → a Job (`job_duration`) → patch the
/// pod's annotation.
fn plan(job_duration: &str) -> serde_json::Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
    "metadata": {"name": "crashy"},
    "spec": {"alertLabels": {"app": "my-app"}, "steps": [
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
            "namespace": "default", "name": "my-pod", "fieldPath": "spec.containers[0].image",
            "outputKey": "podImage"}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "my-pod", "override": {"fieldPath": "spec.containers[1].image",
            "value": {"raw": "{{ .Values.podImage }}"}}}},
        {"type": "job", "job": {"template": {
            "metadata": {"annotations": {"sim.lifeboat.dev/duration": job_duration}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "command": ["echo", "{{ .Values.podImage }}"]}]}}}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "my-pod", "override": {"fieldPath": "metadata.annotations.recovered",
            "value": {"raw": "yes"}}, "patchType": "application/merge-patch+json"}}
    ]}})
}

fn alert() -> serde_json::Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
        "metadata": {"name": "boom"}, "spec": {"labels": {"app": "my-app"}}})
}

async fn assert_recovered(cluster: &Cluster, run_name: &str, ctl: &Controller) -> Vec<u32> {
    let run = cluster.wait_run_finished(run_name, ctl).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}\n{}", ctl.log_text());
    assert!(
        rs.steps.iter().all(|s| s.phase == StepPhase::Succeeded),
        "{rs:#?}"
    );
    let pod = cluster
        .sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "example-image:v1");
    assert_eq!(pod["metadata"]["annotations"]["recovered"], "yes");
    let jobs = Api::<Job>::namespaced(cluster.client.clone(), "default")
        .list(&ListParams::default().labels(&format!("{LABEL_RUN}={run_name}")))
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 1, "the Job must be created exactly once");
    let runs = cluster.sim.get_object(
        "recovery.elotl.co/v1alpha1",
        "recoveryruns",
        Some("default"),
        run_name,
    );
    assert!(runs.is_some());
    rs.steps.iter().map(|s| s.attempts).collect()
}

#[tokio::test]
async fn killed_while_the_job_runs_resumes_and_adopts_the_job() {
    let cluster = Cluster::start("local").await;
    cluster.sim.apply_object(seed_pod()).unwrap();
    let ctl = controller(&cluster, 0).await;
    cluster.create(plan("3s")).await;
    cluster.create(alert()).await;
    let run_name = naming::run_name("crashy", "boom");
    let job_name = naming::job_name(&run_name, 2);

    wait_until("the Job to exist while step 3 runs", || {
        let job = cluster
            .sim
            .get_object("batch/v1", "jobs", Some("default"), &job_name)?;
        let running = job["status"]["conditions"]
            .as_array()
            .is_none_or(|c| c.is_empty());
        let run = cluster.run_now(&run_name)?;
        let step = run.status?.steps.get(2)?.phase;
        (running && step == StepPhase::Running).then_some(())
    })
    .await;
    ctl.kill().await;

    let ctl = controller(&cluster, 1).await;
    let attempts = assert_recovered(&cluster, &run_name, &ctl).await;
    assert_eq!(
        attempts,
        vec![1, 1, 2, 1],
        "only the step in flight (the Job) may execute twice"
    );
    ctl.terminate().await;
}

#[tokio::test]
async fn killed_between_a_patch_and_its_status_write_replays_the_patch() {
    let cluster = Cluster::start("local").await;
    cluster.sim.apply_object(seed_pod()).unwrap();
    let ctl = controller(&cluster, 0).await;
    cluster.create(plan("100ms")).await;
    let run_name = naming::run_name("crashy", "boom");
    // Slow every request down, so the window between the patch landing and the status write
    // that records it is wide enough to kill the process in.
    cluster
        .sim
        .faults()
        .set_latency(Duration::from_millis(1500));
    cluster.create(alert()).await;

    wait_until("the patch to land before its status write", || {
        let pod = cluster
            .sim
            .get_object("v1", "pods", Some("default"), "my-pod")?;
        (pod["spec"]["containers"][1]["image"] == "example-image:v1").then_some(())
    })
    .await;
    let run = cluster.run_now(&run_name).unwrap();
    let recorded = run.status.unwrap().steps[1].phase;
    ctl.kill().await;
    assert_eq!(
        recorded,
        StepPhase::Running,
        "the kill must land after the patch and before its status write"
    );
    cluster.sim.faults().set_latency(Duration::ZERO);

    let ctl = controller(&cluster, 1).await;
    let attempts = assert_recovered(&cluster, &run_name, &ctl).await;
    assert_eq!(
        attempts,
        vec![1, 2, 1, 1],
        "only the step in flight (the patch) may execute twice"
    );
    ctl.terminate().await;
}
