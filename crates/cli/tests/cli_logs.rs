//! `lifeboat runs logs`: the logs of a run's Job step pods, read through the API server's
//! pod log subresource. On the simulator only: the real control plane of the tests has no
//! kubelet to serve logs (its node agent runs no containers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::harness::{Harness, plan, stderr, stdout};
use lifeboat_api::RunPhase;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_logs_prints_the_job_steps_pod_logs_and_refuses_other_steps() {
    let h = Harness::start().await;
    let steps = vec![
        json!({"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
            "namespace": "default", "name": "my-pod",
            "fieldPath": "spec.containers[0].image", "outputKey": "image"}}),
        json!({"type": "job", "title": "Promote", "job": {"template": {
            "metadata": {"annotations": {
                "sim.lifeboat.dev/log": "promoting cluster2\ncluster2 is primary\n"}},
            "spec": {"containers": [{"name": "promote", "image": "busybox",
                "command": ["sh", "-c", "echo promoting"]}]}}}}),
    ];
    let run = h.start_run(plan("promote", steps)).await;
    h.wait_for_phase(&run, RunPhase::Completed).await;

    for args in [
        vec!["runs", "logs", "-n", "default", run.as_str()],
        vec!["runs", "logs", "-n", "default", run.as_str(), "--step", "2"],
    ] {
        let out = h.lifeboat(&args).await;
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("step 2") && text.contains("container promote"),
            "{text}"
        );
        assert!(
            text.contains("promoting cluster2\ncluster2 is primary\n"),
            "{text}"
        );
    }

    let out = h
        .lifeboat(&["runs", "logs", "-n", "default", &run, "--step", "1"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("step 1") && stderr(&out).contains("readField"),
        "{}",
        stderr(&out)
    );
    let out = h
        .lifeboat(&["runs", "logs", "-n", "default", &run, "--step", "9"])
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no step 9"), "{}", stderr(&out));
    h.stop().await;
}
