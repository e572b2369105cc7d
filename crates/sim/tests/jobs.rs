//! The built-in Job controller: Complete, Failed after the backoff limit, DeadlineExceeded,
//! owned pods.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{start, wait_for};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

fn job(name: &str, annotations: serde_json::Value, spec_extra: serde_json::Value) -> Job {
    let mut spec = json!({
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}},
    });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "annotations": annotations},
        "spec": spec,
    }))
    .unwrap()
}

async fn wait_condition(jobs: &Api<Job>, name: &str, type_: &str) -> Job {
    wait_for(
        &format!("job {name} condition {type_}"),
        Duration::from_secs(20),
        || {
            let jobs = jobs.clone();
            let name = name.to_string();
            let type_ = type_.to_string();
            async move {
                let j = jobs.get(&name).await.ok()?;
                let has = j
                    .status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == "True");
                has.then_some(j)
            }
        },
    )
    .await
}

fn condition_reason(j: &Job, type_: &str) -> String {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .and_then(|c| c.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn job_completes_with_an_owned_pod() {
    let (_cluster, client) = start("job-ok").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let created = jobs
        .create(
            &PostParams::default(),
            &job(
                "ok",
                json!({"sim.lifeboat.dev/duration": "50ms"}),
                json!({}),
            ),
        )
        .await
        .unwrap();
    let done = wait_condition(&jobs, "ok", "Complete").await;
    let st = done.status.clone().unwrap();
    assert_eq!(st.succeeded, Some(1));
    assert!(
        st.start_time.is_some() && st.completion_time.is_some(),
        "times set: {st:?}"
    );
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let owned: Vec<Pod> = pods
        .list(&ListParams::default().labels("job-name=ok"))
        .await
        .unwrap()
        .items;
    assert_eq!(owned.len(), 1, "one pod for the job");
    let p = &owned[0];
    assert!(
        p.name_any().starts_with("ok-") && p.name_any().len() == 8,
        "pod name {}",
        p.name_any()
    );
    let owner = &p.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Job", created.uid().unwrap().as_str())
    );
    assert_eq!(
        p.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(pods.into_client(), "default");
    let mut reasons: Vec<String> = events
        .list(&ListParams::default().fields("involvedObject.name=ok,involvedObject.kind=Job"))
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|e| e.reason.clone())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        vec!["Completed", "SuccessfulCreate"],
        "job controller events"
    );
}

#[tokio::test]
async fn job_fails_after_backoff_limit() {
    let (_cluster, client) = start("job-fail").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    jobs.create(
        &PostParams::default(),
        &job(
            "bad",
            json!({"sim.lifeboat.dev/outcome": "Fail", "sim.lifeboat.dev/duration": "20ms"}),
            json!({"backoffLimit": 2}),
        ),
    )
    .await
    .unwrap();
    let failed = wait_condition(&jobs, "bad", "Failed").await;
    assert_eq!(condition_reason(&failed, "Failed"), "BackoffLimitExceeded");
    assert_eq!(
        failed.status.unwrap().failed,
        Some(3),
        "backoffLimit 2 means three failed pods"
    );
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let n = pods
        .list(&ListParams::default().labels("job-name=bad"))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(n, 3, "one pod per attempt");
}

#[tokio::test]
async fn job_outcome_from_pod_template_annotation() {
    let (_cluster, client) = start("job-template").await;
    let jobs: Api<Job> = Api::namespaced(client, "default");
    let mut j = job("tmpl", json!({}), json!({"backoffLimit": 0}));
    j.spec.as_mut().unwrap().template.metadata = Some(
        serde_json::from_value(json!({"annotations": {"sim.lifeboat.dev/outcome": "Fail", "sim.lifeboat.dev/duration": "10ms"}})).unwrap(),
    );
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let failed = wait_condition(&jobs, "tmpl", "Failed").await;
    assert_eq!(condition_reason(&failed, "Failed"), "BackoffLimitExceeded");
}

#[tokio::test]
async fn job_deadline_exceeded() {
    let (_cluster, client) = start("job-deadline").await;
    let jobs: Api<Job> = Api::namespaced(client, "default");
    jobs.create(
        &PostParams::default(),
        &job(
            "slow",
            json!({"sim.lifeboat.dev/duration": "60s"}),
            json!({"activeDeadlineSeconds": 1}),
        ),
    )
    .await
    .unwrap();
    let failed = wait_condition(&jobs, "slow", "Failed").await;
    assert_eq!(condition_reason(&failed, "Failed"), "DeadlineExceeded");
}

#[tokio::test]
async fn invalid_jobs_and_dry_runs_start_nothing() {
    let (_cluster, client) = start("job-invalid").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let mut j = job("always", json!({}), json!({}));
    j.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .restart_policy = Some("Always".into());
    let err = jobs.create(&PostParams::default(), &j).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "restartPolicy Always is invalid: {err:?}"
    );

    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    jobs.create(
        &dry,
        &job(
            "dry",
            json!({"sim.lifeboat.dev/duration": "10ms"}),
            json!({}),
        ),
    )
    .await
    .unwrap();
    // A real Job with the same duration finishing shows the controller ran meanwhile.
    jobs.create(
        &PostParams::default(),
        &job(
            "real",
            json!({"sim.lifeboat.dev/duration": "10ms"}),
            json!({}),
        ),
    )
    .await
    .unwrap();
    wait_condition(&jobs, "real", "Complete").await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let n = pods
        .list(&ListParams::default().labels("job-name=dry"))
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(n, 0, "a dry-run Job creates no pod");
}
