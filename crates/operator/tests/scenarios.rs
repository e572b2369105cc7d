//! Recovery scenarios against simulated clusters, with the controller in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use lifeboat_api::conditions::{STATUS_FALSE, TYPE_VALID, find_condition};
use lifeboat_api::{RecoveryRun, RunPhase, StepPhase};
use lifeboat_operator::naming;
use serde_json::json;

fn alert(name: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
        "metadata": {"name": name}, "spec": {"labels": labels}})
}

fn plan(name: &str, labels: serde_json::Value, steps: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
        "metadata": {"name": name}, "spec": {"alertLabels": labels, "steps": steps}})
}

fn configmap(name: &str, data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": data})
}

/// Waits until step `index` of the run is Running.
async fn wait_step_running(client: &kube::Client, name: &str, index: usize) {
    let api: Api<RecoveryRun> = Api::namespaced(client.clone(), "default");
    let cond = move |r: Option<&RecoveryRun>| {
        r.and_then(|r| r.status.as_ref())
            .and_then(|s| s.steps.get(index))
            .is_some_and(|s| s.phase == StepPhase::Running)
    };
    tokio::time::timeout(DEADLINE, await_condition(api, name, cond))
        .await
        .unwrap_or_else(|_| panic!("step {index} of run {name} never started"))
        .unwrap();
}

#[tokio::test]
async fn ferretdb_failover_across_three_clusters() {
    let (_mgmt_sim, mgmt) = start_cluster("mgmt").await;
    let (db_sim, db) = start_cluster("db").await;
    let (proxy_sim, _proxy) = start_cluster("proxy").await;
    db_sim
        .apply_object(configmap("postgres-a", json!({"role": "primary"})))
        .unwrap();
    db_sim
        .apply_object(configmap("postgres-b", json!({"role": "replica"})))
        .unwrap();
    db_sim
        .apply_object(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "postgres-b-lb", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 5432}]}}))
        .unwrap();
    proxy_sim
        .apply_object(configmap(
            "haproxy",
            json!({"haproxy.cfg": "backend db\n  server primary 10.0.0.1:5432\n"}),
        ))
        .unwrap();
    register_cluster(&mgmt, "db", &db_sim).await;
    register_cluster(&mgmt, "proxy", &proxy_sim).await;
    let ctl = Controller::start(mgmt.clone());

    let steps = json!([
        {"type": "patch", "title": "Demote the old primary", "cluster": "db",
         "patch": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default",
                   "name": "postgres-a", "override": {"fieldPath": "data.role", "value": {"raw": "replica"}},
                   "patchType": "application/merge-patch+json"}},
        {"type": "patch", "title": "Promote the standby", "cluster": "db",
         "patch": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default",
                   "name": "postgres-b", "override": {"fieldPath": "data.role", "value": {"raw": "primary"}},
                   "patchType": "application/merge-patch+json"}},
        {"type": "wait", "title": "Wait for the new primary's address", "cluster": "db", "timeout": "20s",
         "wait": {"apiVersion": "v1", "resource": "services", "namespace": "default",
                  "name": "postgres-b-lb", "fieldPath": "status.loadBalancer.ingress[0].ip",
                  "condition": "Exists"}},
        {"readField": {"apiVersion": "v1", "resource": "services", "namespace": "default",
                       "name": "postgres-b-lb", "fieldPath": "{.status.loadBalancer.ingress[0].ip}",
                       "outputKey": "primaryAddress"},
         "cluster": "db", "type": "readField"},
        {"type": "patch", "title": "Point HAProxy at the new primary", "cluster": "proxy",
         "patch": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default", "name": "haproxy",
                   "override": {"fieldPath": "data[\"haproxy.cfg\"]",
                                "value": {"raw": "backend db\n  server primary {{ .Values.primaryAddress }}:5432\n"}},
                   "patchType": "application/merge-patch+json"}}
    ]);
    create(
        &mgmt,
        plan(
            "ferretdb-failover",
            json!({"alertname": "PostgresPrimaryDown"}),
            steps,
        ),
        "default",
    )
    .await;
    create(
        &mgmt,
        alert(
            "pg-down",
            json!({"alertname": "PostgresPrimaryDown", "severity": "critical"}),
        ),
        "default",
    )
    .await;

    let run_name = naming::run_name("ferretdb-failover", "pg-down");
    wait_step_running(&mgmt, &run_name, 2).await;
    // The cloud assigns the load balancer address while the run waits.
    Api::<Service>::namespaced(db.clone(), "default")
        .patch_status(
            "postgres-b-lb",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.42"}]}}})),
        )
        .await
        .unwrap();

    let run = wait_run_finished(&mgmt, "default", &run_name).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "run status: {rs:#?}");
    assert_eq!(rs.values["primaryAddress"], "10.0.0.42");
    let clusters: Vec<_> = rs
        .steps
        .iter()
        .map(|s| s.cluster.clone().unwrap())
        .collect();
    assert_eq!(clusters, ["db", "db", "db", "db", "proxy"]);
    let a = db_sim
        .get_object("v1", "configmaps", Some("default"), "postgres-a")
        .unwrap();
    let b = db_sim
        .get_object("v1", "configmaps", Some("default"), "postgres-b")
        .unwrap();
    assert_eq!(a["data"]["role"], "replica");
    assert_eq!(b["data"]["role"], "primary");
    let cfg = proxy_sim
        .get_object("v1", "configmaps", Some("default"), "haproxy")
        .unwrap();
    assert_eq!(
        cfg["data"]["haproxy.cfg"], "backend db\n  server primary 10.0.0.42:5432\n",
        "HAProxy must point at the new primary"
    );
    ctl.stop().await;
}

#[tokio::test]
async fn unknown_cluster_fails_the_step_with_a_clear_message() {
    let (_sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    let run = json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
        "metadata": {"name": "to-nowhere"},
        "spec": {"alertSpec": {"name": "x", "labels": {}}, "steps": [
            {"type": "readField", "cluster": "atlantis",
             "readField": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default",
                           "name": "c", "fieldPath": "data.x", "outputKey": "x"}}]}});
    create(&client, run, "default").await;
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
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(seed_pod()).unwrap();
    let ctl = Controller::start(client.clone());
    let mut run = yaml(SEED_RUN);
    run.as_object_mut().unwrap().remove("status");
    run["metadata"]["name"] = json!("drill");
    run["spec"]["dryRun"] = json!(true);
    create(&client, run, "default").await;

    let run = wait_run_finished(&client, "default", "drill").await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "run status: {rs:#?}");
    assert_eq!(rs.values["podImage"], "example-image:v1", "reads are real");
    let rendered = rs.steps[1]
        .rendered
        .clone()
        .expect("rendered patch recorded");
    assert_eq!(rendered["patchType"], "application/json-patch+json");
    let op = &rendered["patch"][0];
    assert_eq!(op["path"], "/spec/containers/1/image", "{rendered}");
    assert_eq!(op["value"], "example-image:v1", "{rendered}");
    let job_msg = rs.steps[2].message.clone().unwrap();
    assert!(
        job_msg.starts_with("dry run: Job would be created"),
        "{job_msg}"
    );
    assert!(
        rs.steps[2].rendered.is_some(),
        "the rendered Job is recorded"
    );

    let pod = sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(
        pod["spec"]["containers"][1]["image"], "sidecar:old",
        "dry run must not patch"
    );
    let job = Api::<Job>::namespaced(client.clone(), "default")
        .get_opt(&naming::job_name("drill", 2))
        .await
        .unwrap();
    assert!(job.is_none(), "dry run must not create the Job");
    ctl.stop().await;
}

fn pod_steps() -> serde_json::Value {
    json!([
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "my-pod", "fieldPath": "spec.containers[0].image", "outputKey": "podImage"}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "my-pod", "override": {"fieldPath": "spec.containers[1].image",
            "value": {"raw": "{{ .Values.podImage }}"}}}}
    ])
}

#[tokio::test]
async fn steps_impersonate_the_plans_service_account() {
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(seed_pod()).unwrap();
    let sa_user = "system:serviceaccount:default:recovery";
    sim.authz().allow(
        sa_user,
        &["get", "list", "watch"],
        "",
        "pods",
        Some("default"),
    );
    let ctl = Controller::start(client.clone());
    let mut p = plan("guarded", json!({"app": "db"}), pod_steps());
    p["spec"]["serviceAccountName"] = json!("recovery");
    create(&client, p, "default").await;

    create(&client, alert("first", json!({"app": "db"})), "default").await;
    let run = wait_run_finished(&client, "default", &naming::run_name("guarded", "first")).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Failed, "run status: {rs:#?}");
    assert_eq!(
        rs.steps[0].phase,
        StepPhase::Succeeded,
        "the account may read"
    );
    let msg = rs.steps[1].message.clone().unwrap();
    assert!(msg.contains("forbidden") && msg.contains(sa_user), "{msg}");
    let pod = sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "sidecar:old");

    sim.authz()
        .allow(sa_user, &["patch"], "", "pods", Some("default"));
    create(&client, alert("second", json!({"app": "db"})), "default").await;
    let run = wait_run_finished(&client, "default", &naming::run_name("guarded", "second")).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "run status: {rs:#?}");
    let pod = sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "example-image:v1");
    ctl.stop().await;
}

#[tokio::test]
async fn invalid_plan_is_reported_and_never_runs() {
    let (_sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    let steps = json!([{"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
        "namespace": "default", "name": "my-pod", "fieldPath": "spec.containers[", "outputKey": "x"}}]);
    create(
        &client,
        plan("broken", json!({"app": "db"}), steps),
        "default",
    )
    .await;
    let p = wait_plan_validated(&client, "default", "broken").await;
    let ps = p.status.unwrap();
    assert_eq!(ps.validation.as_deref(), Some("Invalid"));
    let valid = find_condition(&ps.conditions, TYPE_VALID).expect("Valid condition");
    assert_eq!(valid.status, STATUS_FALSE);
    assert_eq!(valid.reason.as_deref(), Some("Invalid"));
    let msg = valid.message.clone().unwrap();
    assert!(msg.contains("spec.steps[0].readField.fieldPath"), "{msg}");

    create(&client, alert("a1", json!({"app": "db"})), "default").await;
    let a = wait_alert_processed(&client, "default", "a1").await;
    let st = a.status.unwrap();
    assert!(st.runs.is_empty(), "an invalid plan must never run: {st:?}");
    assert_eq!(st.skipped.len(), 1);
    assert_eq!(st.skipped[0].reason, "Invalid");
    let runs = Api::<RecoveryRun>::namespaced(client.clone(), "default")
        .list(&Default::default())
        .await
        .unwrap();
    assert!(runs.items.is_empty());
    ctl.stop().await;
}

#[tokio::test]
async fn missing_field_and_missing_template_key_fail_the_run() {
    let (sim, client) = start_cluster("local").await;
    sim.apply_object(seed_pod()).unwrap();
    let ctl = Controller::start(client.clone());
    let mut steps = pod_steps();
    steps[0]["readField"]["fieldPath"] = json!("spec.nodeName");
    let run = json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
        "metadata": {"name": "missing-field"},
        "spec": {"alertSpec": {"name": "x", "labels": {}}, "steps": steps}});
    create(&client, run, "default").await;
    let run = wait_run_finished(&client, "default", "missing-field").await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Failed);
    assert_eq!(
        rs.steps[0].message.as_deref(),
        Some("field spec.nodeName not found in pods default/my-pod")
    );
    assert_eq!(
        rs.steps[1].phase,
        StepPhase::Skipped,
        "later steps must not run"
    );
    assert!(rs.message.unwrap().contains("spec.nodeName"));

    let mut steps = pod_steps();
    steps[1]["patch"]["override"]["value"]["raw"] = json!("{{ .Alert.Labels.team }}");
    let run = json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
        "metadata": {"name": "missing-key"},
        "spec": {"alertSpec": {"name": "x", "labels": {"app": "db"}}, "steps": steps}});
    create(&client, run, "default").await;
    let run = wait_run_finished(&client, "default", "missing-key").await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Failed, "run status: {rs:#?}");
    let msg = rs.steps[1].message.clone().unwrap();
    assert!(msg.contains("missing key") && msg.contains("team"), "{msg}");
    let pod = sim
        .get_object("v1", "pods", Some("default"), "my-pod")
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "sidecar:old");
    ctl.stop().await;
}

#[tokio::test]
async fn forbid_policy_records_a_skip_and_suspend_starts_nothing() {
    let (_sim, client) = start_cluster("local").await;
    let ctl = Controller::start(client.clone());
    let steps = json!([{"type": "job", "job": {"template": {
        "metadata": {"annotations": {"sim.lifeboat.dev/duration": "3s"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}}]);
    create(
        &client,
        plan("slow", json!({"app": "db"}), steps),
        "default",
    )
    .await;
    create(&client, alert("one", json!({"app": "db"})), "default").await;
    let first = wait_alert_processed(&client, "default", "one")
        .await
        .status
        .unwrap();
    assert_eq!(first.runs, vec![naming::run_name("slow", "one")]);
    create(&client, alert("two", json!({"app": "db"})), "default").await;
    let second = wait_alert_processed(&client, "default", "two")
        .await
        .status
        .unwrap();
    assert!(second.runs.is_empty(), "{second:?}");
    assert_eq!(second.skipped.len(), 1);
    assert_eq!(second.skipped[0].reason, "ConcurrencyForbid");
    assert!(
        second.skipped[0]
            .message
            .clone()
            .unwrap()
            .contains(&first.runs[0])
    );

    let run = wait_run_finished(&client, "default", &first.runs[0]).await;
    assert_eq!(run.status.unwrap().phase, RunPhase::Completed);

    Api::<lifeboat_api::RecoveryPlan>::namespaced(client.clone(), "default")
        .patch(
            "slow",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    // The plan cache must see the suspension before the next alert; wait for the plan
    // controller to observe the new generation.
    let api: Api<lifeboat_api::RecoveryPlan> = Api::namespaced(client.clone(), "default");
    tokio::time::timeout(
        DEADLINE,
        await_condition(api, "slow", |p: Option<&lifeboat_api::RecoveryPlan>| {
            p.is_some_and(|p| {
                p.status.as_ref().and_then(|s| s.observed_generation) == p.metadata.generation
            })
        }),
    )
    .await
    .unwrap()
    .unwrap();
    create(&client, alert("three", json!({"app": "db"})), "default").await;
    let third = wait_alert_processed(&client, "default", "three")
        .await
        .status
        .unwrap();
    assert!(third.runs.is_empty(), "{third:?}");
    assert_eq!(third.skipped[0].reason, "Suspended");
    let runs = Api::<RecoveryRun>::namespaced(client.clone(), "default")
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1, "exactly one run for the three alerts");
    ctl.stop().await;
}
