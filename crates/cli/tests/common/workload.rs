//! A recovery workload for the robustness tests (crash loop, API faults): two plans that
//! both match every alert of the suite, each reading a pod, patching it (JSON Patch and merge
//! patch), running a Job and reading back what it wrote; and the checks that every run did
//! all of it exactly once. On the simulator, the workload's own reads and writes go
//! straight to its store (never slowed down or failed by injected faults); on a real
//! control plane they go through the API.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use lifeboat_api::{RecoveryRun, RunPhase, StepPhase};
use lifeboat_operator::naming;
use serde_json::{Value, json};

use lifeboat_testkit::TestCluster;

/// The plans of the workload; every alert matches both.
pub const PLANS: [&str; 2] = ["crash-a", "crash-b"];
/// Steps per run.
pub const STEPS: usize = 5;
/// Index of the Job step.
pub const JOB_STEP: usize = 2;

/// Read the target's image → patch it into the sidecar (JSON Patch) → a Job echoing it →
/// mark the pod as recovered by this plan (merge patch) → read the mark back. Runs of the
/// plan may overlap (`Allow`) and are all kept.
pub fn plan(name: &str) -> Value {
    let mark = format!("metadata.annotations[\"recovered-{name}\"]");
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
    "metadata": {"name": name, "namespace": "default"},
    "spec": {
        "alertLabels": {"suite": "crash"},
        "concurrencyPolicy": "Allow",
        "successfulRunsHistoryLimit": 1000,
        "steps": [
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
            "namespace": "default", "name": "app-{{ .Alert.Labels.target }}",
            "fieldPath": "spec.containers[0].image", "outputKey": "podImage"}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "app-{{ .Alert.Labels.target }}", "override": {"fieldPath": "spec.containers[1].image",
            "value": {"raw": "{{ .Values.podImage }}"}}}},
        {"type": "job", "job": {"template": {
            "metadata": {"annotations": {"sim.lifeboat.dev/duration": "300ms"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                "command": ["sh", "-c", "sleep 0.3; echo {{ .Values.podImage }}"]}]}}}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "app-{{ .Alert.Labels.target }}", "override": {"fieldPath": mark,
            "value": {"raw": "{{ .Run.Name }}"}}, "patchType": "application/merge-patch+json"}},
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
            "namespace": "default", "name": "app-{{ .Alert.Labels.target }}",
            "fieldPath": mark, "outputKey": "marker"}}
    ]}})
}

/// Applies the workload's plans.
pub async fn apply_plans(cluster: &TestCluster) {
    for p in PLANS {
        cluster.apply(plan(p)).await;
    }
}

pub fn alert_name(i: usize) -> String {
    format!("outage-{i}")
}

fn pod_name(i: usize) -> String {
    format!("app-t{i}")
}

fn image(i: usize) -> String {
    format!("registry/app:{i}")
}

/// Adds alert `i` and the pod it is about.
pub async fn add_alert(cluster: &TestCluster, i: usize) {
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(i), "namespace": "default"},
            "spec": {"containers": [
                {"name": "app", "image": image(i)},
                {"name": "sidecar", "image": "sidecar:old"}]}}))
        .await;
    cluster
        .apply(
            json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
            "metadata": {"name": alert_name(i), "namespace": "default"},
            "spec": {"labels": {"suite": "crash", "target": format!("t{i}")}}}),
        )
        .await;
}

async fn stored_alert(cluster: &TestCluster, i: usize) -> Option<Value> {
    cluster
        .get(
            "recovery.elotl.co/v1alpha1",
            "receivedalerts",
            Some("default"),
            &alert_name(i),
        )
        .await
}

/// The run as stored right now.
pub async fn run_now(cluster: &TestCluster, name: &str) -> Option<RecoveryRun> {
    cluster
        .get(
            "recovery.elotl.co/v1alpha1",
            "recoveryruns",
            Some("default"),
            name,
        )
        .await
        .map(|v| serde_json::from_value(v).unwrap())
}

/// Whether alert `i` has been processed and all of its runs have finished.
pub async fn alert_done(cluster: &TestCluster, i: usize) -> bool {
    if !stored_alert(cluster, i)
        .await
        .is_some_and(|a| a["status"]["processed"] == true)
    {
        return false;
    }
    for p in PLANS {
        let finished = run_now(cluster, &naming::run_name(p, &alert_name(i)))
            .await
            .and_then(|r| r.status)
            .is_some_and(|s| s.phase.is_finished());
        if !finished {
            return false;
        }
    }
    true
}

/// Whether alerts `0..alerts` are all done.
pub async fn all_done(cluster: &TestCluster, alerts: usize) -> bool {
    for i in 0..alerts {
        if !alert_done(cluster, i).await {
            return false;
        }
    }
    true
}

/// The type of a step some run of alerts `0..alerts` is executing right now, if any.
pub async fn step_in_flight(cluster: &TestCluster, alerts: usize) -> Option<String> {
    for i in 0..alerts {
        for p in PLANS {
            let Some(run) = run_now(cluster, &naming::run_name(p, &alert_name(i))).await else {
                continue;
            };
            let Some(status) = run.status else { continue };
            if let Some(pos) = status
                .steps
                .iter()
                .position(|s| s.phase == StepPhase::Running)
            {
                return Some(run.spec.steps[pos].type_.as_str().to_string());
            }
        }
    }
    None
}

/// Checks the outcome for alerts `0..alerts`, once they are all done: exactly one run per
/// (alert, plan) and no other; every run Completed with every step Succeeded (attempts ≥ 1)
/// and its values; the pods patched; the alerts listing their runs; every Job created
/// exactly once according to the API server's request log. `context` goes into every
/// failure message (the seed, the controller log).
pub async fn assert_all_recovered_once(cluster: &TestCluster, alerts: usize, context: &str) {
    let runs = Api::<RecoveryRun>::namespaced(cluster.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let mut pairs = BTreeSet::new();
    for r in &runs {
        let pair = (
            r.spec.alert_spec.name.clone(),
            r.spec.plan_name.clone().unwrap_or_default(),
        );
        assert!(
            pairs.insert(pair.clone()),
            "a second run for {pair:?}\n{context}"
        );
    }
    assert_eq!(
        runs.len(),
        alerts * PLANS.len(),
        "one run per (alert, plan): {pairs:?}\n{context}"
    );

    for i in 0..alerts {
        let pod = cluster
            .get("v1", "pods", Some("default"), &pod_name(i))
            .await
            .unwrap();
        assert_eq!(
            pod["spec"]["containers"][1]["image"],
            image(i).as_str(),
            "pod {} not patched\n{context}",
            pod_name(i)
        );
        let alert = stored_alert(cluster, i).await.unwrap();
        for p in PLANS {
            let name = naming::run_name(p, &alert_name(i));
            let run = runs
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("run {name} missing\n{context}"));
            let rs = run.status.clone().unwrap();
            assert_eq!(
                rs.phase,
                RunPhase::Completed,
                "run {name}: {rs:#?}\n{context}"
            );
            assert_eq!(rs.steps.len(), STEPS, "run {name}: {rs:#?}");
            for (k, s) in rs.steps.iter().enumerate() {
                assert!(
                    s.phase == StepPhase::Succeeded && s.attempts >= 1 && s.finished_at.is_some(),
                    "step {k} of run {name} was skipped or not finished: {s:#?}\n{context}"
                );
            }
            assert_eq!(rs.values["podImage"], image(i).as_str(), "run {name}");
            assert_eq!(rs.values["marker"], name.as_str(), "run {name}");
            assert_eq!(
                pod["metadata"]["annotations"][format!("recovered-{p}")],
                name.as_str()
            );
            assert!(
                alert["status"]["runs"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|n| n == name.as_str())),
                "alert {} must list run {name}: {}\n{context}",
                alert_name(i),
                alert["status"]
            );
        }
    }

    // Every Job created exactly once: the API server's own record (the simulator's request
    // counters, or kube-apiserver's audit log) has no delete of a Job and no more creates
    // than runs; the names below are exactly one per run.
    cluster.assert_each_created_once("jobs", (alerts * PLANS.len()) as u64, context);
    let jobs = Api::<Job>::namespaced(cluster.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    let job_names: BTreeSet<String> = jobs
        .iter()
        .filter_map(|j| j.metadata.name.clone())
        .collect();
    let want: BTreeSet<String> = runs
        .iter()
        .map(|r| naming::job_name(r.metadata.name.as_deref().unwrap(), JOB_STEP))
        .collect();
    assert_eq!(
        job_names, want,
        "one Job per run, with its deterministic name\n{context}"
    );
}
