//! A recovery workload for the robustness tests (crash loop, API faults): two plans that
//! both match every alert of the suite, each reading a pod, patching it (JSON Patch and merge
//! patch), running a Job and reading back what it wrote; alerts added straight into the
//! simulator's store; and the checks that every run did all of it exactly once.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use lifeboat_api::{RecoveryRun, RunPhase, StepPhase};
use lifeboat_operator::naming;
use serde_json::{Value, json};

use super::Cluster;

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
                "command": ["echo", "{{ .Values.podImage }}"]}]}}}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "app-{{ .Alert.Labels.target }}", "override": {"fieldPath": mark,
            "value": {"raw": "{{ .Run.Name }}"}}, "patchType": "application/merge-patch+json"}},
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
            "namespace": "default", "name": "app-{{ .Alert.Labels.target }}",
            "fieldPath": mark, "outputKey": "marker"}}
    ]}})
}

/// Applies the workload's plans straight into the store.
pub fn apply_plans(cluster: &Cluster) {
    for p in PLANS {
        cluster.sim.apply_object(plan(p)).unwrap();
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

/// Adds alert `i` and the pod it is about, straight into the store (no API request, so the
/// test's own setup is never slowed down or failed by injected faults).
pub fn add_alert(cluster: &Cluster, i: usize) {
    cluster
        .sim
        .apply_object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod_name(i), "namespace": "default"},
            "spec": {"containers": [
                {"name": "app", "image": image(i)},
                {"name": "sidecar", "image": "sidecar:old"}]}}))
        .unwrap();
    cluster
        .sim
        .apply_object(
            json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
            "metadata": {"name": alert_name(i), "namespace": "default"},
            "spec": {"labels": {"suite": "crash", "target": format!("t{i}")}}}),
        )
        .unwrap();
}

fn stored_alert(cluster: &Cluster, i: usize) -> Option<Value> {
    cluster.sim.get_object(
        "recovery.elotl.co/v1alpha1",
        "receivedalerts",
        Some("default"),
        &alert_name(i),
    )
}

/// Whether alert `i` has been processed and all of its runs have finished (store read).
pub fn alert_done(cluster: &Cluster, i: usize) -> bool {
    stored_alert(cluster, i).is_some_and(|a| a["status"]["processed"] == true)
        && PLANS.iter().all(|p| {
            cluster
                .run_now(&naming::run_name(p, &alert_name(i)))
                .and_then(|r| r.status)
                .is_some_and(|s| s.phase.is_finished())
        })
}

/// Whether alerts `0..alerts` are all done.
pub fn all_done(cluster: &Cluster, alerts: usize) -> bool {
    (0..alerts).all(|i| alert_done(cluster, i))
}

/// The type of a step some run of alerts `0..alerts` is executing right now, if any.
pub fn step_in_flight(cluster: &Cluster, alerts: usize) -> Option<String> {
    for i in 0..alerts {
        for p in PLANS {
            let Some(run) = cluster.run_now(&naming::run_name(p, &alert_name(i))) else {
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
pub async fn assert_all_recovered_once(cluster: &Cluster, alerts: usize, context: &str) {
    let runs = Api::<RecoveryRun>::namespaced(cluster.client.clone(), "default")
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
            .sim
            .get_object("v1", "pods", Some("default"), &pod_name(i))
            .unwrap();
        assert_eq!(
            pod["spec"]["containers"][1]["image"],
            image(i).as_str(),
            "pod {} not patched\n{context}",
            pod_name(i)
        );
        let alert = stored_alert(cluster, i).unwrap();
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

    // Every Job created exactly once: the simulator counted every accepted create.
    let stats = cluster.sim.stats();
    let created: u64 = stats
        .counts
        .iter()
        .filter(|((verb, resource, code), _)| {
            verb == "create" && resource == "jobs" && *code == 201
        })
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(
        created,
        (alerts * PLANS.len()) as u64,
        "Job creations accepted by the API server:\n{stats}\n{context}"
    );
    let jobs = Api::<Job>::namespaced(cluster.client.clone(), "default")
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
