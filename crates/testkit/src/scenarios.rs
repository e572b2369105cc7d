//! Recovery scenarios shared by the operator's in-process tests and the end-to-end tests
//! of the `lifeboat controller` binary, on either backend (`LIFEBOAT_TEST_CLUSTER`).
//!
//! A scenario gets clusters with a controller already running against the home cluster
//! (in-process or as a process: the scenario cannot tell), creates what it needs, and
//! asserts the outcome. `diag` describes the controller for failure messages (its log,
//! for a process).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use lifeboat_api::conditions::{STATUS_FALSE, TYPE_VALID, find_condition};
use lifeboat_api::{RecoveryPlan, RecoveryRun, RecoveryRunStatus, RunPhase, StepPhase};
use lifeboat_operator::naming;
use serde_json::{Value, json};

use crate::cluster::{LIFEBOAT_NS, TestCluster};
pub use crate::wait::{
    Diag, no_diag, wait_alert_processed, wait_plan_validated, wait_run_finished, wait_step_running,
};

/// Waits for run `name` (namespace `default`) to finish, asserts it ended in `phase`, and
/// returns its status.
async fn run_finished_as(
    client: &Client,
    name: &str,
    phase: RunPhase,
    diag: Diag<'_>,
) -> RecoveryRunStatus {
    let run = wait_run_finished(client, "default", name, diag).await;
    let rs = run.status.expect("a finished run has a status");
    assert_eq!(rs.phase, phase, "run status: {rs:#?}\n{}", diag());
    rs
}
/// The seed's hand-written run (a verbatim copy of `../shared/seed-examples`).
pub const SEED_RUN: &str = include_str!("../fixtures/recovery-run-003.yaml");
/// The seed's plan and alert, verbatim.
pub const SEED_PLAN: &str = include_str!("../fixtures/recovery-plan-003.yaml");
pub const SEED_ALERT: &str = include_str!("../fixtures/received-alert-003.yaml");

/// The cluster Secret registering `cluster` under `name`.
pub fn cluster_secret(name: &str, cluster: &TestCluster) -> Secret {
    lifeboat_api::cluster_secret(
        &format!("cluster-{name}"),
        LIFEBOAT_NS,
        name,
        cluster.kubeconfig_yaml(),
    )
}

/// Registers `cluster` (its admin kubeconfig) with lifeboat on `home` under `name`.
pub async fn register_cluster(home: &Client, name: &str, cluster: &TestCluster) {
    Api::<Secret>::namespaced(home.clone(), LIFEBOAT_NS)
        .create(&PostParams::default(), &cluster_secret(name, cluster))
        .await
        .unwrap();
}

/// Parses a YAML document into JSON.
pub use crate::yaml;

/// Creates an object through the API, in `namespace` unless it names one.
pub async fn create(client: &Client, obj: Value, namespace: &str) -> Value {
    let api_version = obj["apiVersion"].as_str().unwrap().to_string();
    let kind = obj["kind"].as_str().unwrap().to_string();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    let plural = match kind.as_str() {
        "ReceivedAlert" => "receivedalerts".to_string(),
        "RecoveryPlan" => "recoveryplans".to_string(),
        "RecoveryRun" => "recoveryruns".to_string(),
        k => format!("{}s", k.to_ascii_lowercase()),
    };
    let ar = ApiResource {
        group,
        version,
        api_version,
        kind,
        plural,
    };
    let ns = obj["metadata"]["namespace"]
        .as_str()
        .unwrap_or(namespace)
        .to_string();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let dynobj: DynamicObject = serde_json::from_value(obj).unwrap();
    let created = api.create(&PostParams::default(), &dynobj).await.unwrap();
    serde_json::to_value(created).unwrap()
}

/// The seed's pod: `my-pod` in `default` with two containers.
pub fn seed_pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "my-pod", "namespace": "default"},
        "spec": {"containers": [
            {"name": "app", "image": "example-image:v1"},
            {"name": "sidecar", "image": "sidecar:old"}
        ]}
    })
}

pub fn alert(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
        "metadata": {"name": name}, "spec": {"labels": labels}})
}

pub fn plan(name: &str, labels: Value, steps: Value) -> Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
        "metadata": {"name": name}, "spec": {"alertLabels": labels, "steps": steps}})
}

pub fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": data})
}

/// A hand-written run of `steps`.
pub fn run(name: &str, steps: Value) -> Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
        "metadata": {"name": name},
        "spec": {"alertSpec": {"name": "x", "labels": {}}, "steps": steps}})
}

/// Read the first container's image of `my-pod`, patch it into the second container.
pub fn pod_steps() -> Value {
    json!([
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "my-pod", "fieldPath": "spec.containers[0].image", "outputKey": "podImage"}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "namespace": "default",
            "name": "my-pod", "override": {"fieldPath": "spec.containers[1].image",
            "value": {"raw": "{{ .Values.podImage }}"}}}}
    ])
}

/// The clusters of the FerretDB failover: the database cluster's primary, standby and its
/// load balancer Service, the proxy cluster's HAProxy config. Registers both with `home`.
pub async fn ferretdb_clusters(home: &Client, db: &TestCluster, proxy: &TestCluster) {
    db.apply(configmap("postgres-a", json!({"role": "primary"})))
        .await;
    db.apply(configmap("postgres-b", json!({"role": "replica"})))
        .await;
    db.apply(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "postgres-b-lb", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 5432}]}}))
        .await;
    proxy
        .apply(configmap(
            "haproxy",
            json!({"haproxy.cfg": "backend db\n  server primary 10.0.0.1:5432\n"}),
        ))
        .await;
    register_cluster(home, "db", db).await;
    register_cluster(home, "proxy", proxy).await;
}

/// FerretDB-style failover across three clusters (SPEC acceptance 3): demote, promote, wait
/// for the load balancer address, read it, point HAProxy at it. Needs
/// [`ferretdb_clusters`] first.
pub async fn ferretdb_failover(
    home: &Client,
    db: &TestCluster,
    proxy: &TestCluster,
    diag: Diag<'_>,
) {
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
        home,
        plan(
            "ferretdb-failover",
            json!({"alertname": "PostgresPrimaryDown"}),
            steps,
        ),
        "default",
    )
    .await;
    // Alerts match the plans the controller knows: wait until it has seen this one.
    wait_plan_validated(home, "default", "ferretdb-failover", diag).await;
    create(
        home,
        alert(
            "pg-down",
            json!({"alertname": "PostgresPrimaryDown", "severity": "critical"}),
        ),
        "default",
    )
    .await;

    let run_name = naming::run_name("ferretdb-failover", "pg-down");
    wait_step_running(home, &run_name, 2, diag).await;
    // The cloud assigns the load balancer address while the run waits.
    Api::<Service>::namespaced(db.client(), "default")
        .patch_status(
            "postgres-b-lb",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.42"}]}}})),
        )
        .await
        .unwrap();

    let rs = run_finished_as(home, &run_name, RunPhase::Completed, diag).await;
    assert_eq!(rs.values["primaryAddress"], "10.0.0.42");
    let clusters: Vec<_> = rs
        .steps
        .iter()
        .map(|s| s.cluster.clone().unwrap_or_default())
        .collect();
    assert_eq!(clusters, ["db", "db", "db", "db", "proxy"]);
    let a = db
        .get("v1", "configmaps", Some("default"), "postgres-a")
        .await
        .unwrap();
    let b = db
        .get("v1", "configmaps", Some("default"), "postgres-b")
        .await
        .unwrap();
    assert_eq!(
        a["data"]["role"], "replica",
        "the old primary must be demoted"
    );
    assert_eq!(b["data"]["role"], "primary", "the standby must be promoted");
    let cfg = proxy
        .get("v1", "configmaps", Some("default"), "haproxy")
        .await
        .unwrap();
    assert_eq!(
        cfg["data"]["haproxy.cfg"], "backend db\n  server primary 10.0.0.42:5432\n",
        "HAProxy must point at the new primary"
    );
}

/// A dry run (SPEC acceptance 6) reads for real, records the rendered patch and Job, and
/// changes nothing.
pub async fn dry_run(cluster: &TestCluster, client: &Client, diag: Diag<'_>) {
    cluster.apply(seed_pod()).await;
    let mut run = yaml(SEED_RUN);
    run.as_object_mut().unwrap().remove("status");
    run["metadata"]["name"] = json!("drill");
    run["spec"]["dryRun"] = json!(true);
    create(client, run, "default").await;

    let rs = run_finished_as(client, "drill", RunPhase::Completed, diag).await;
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

    let pod = cluster
        .get("v1", "pods", Some("default"), "my-pod")
        .await
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
}

/// Steps impersonate the plan's service account (SPEC acceptance 7): what the account may
/// not do fails with a Forbidden naming it; once allowed, the run completes.
pub async fn impersonation(cluster: &TestCluster, client: &Client, diag: Diag<'_>) {
    cluster.apply(seed_pod()).await;
    let sa_user = "system:serviceaccount:default:recovery";
    cluster
        .allow(
            sa_user,
            &["get", "list", "watch"],
            "",
            "pods",
            Some("default"),
        )
        .await;
    let mut p = plan("guarded", json!({"app": "db"}), pod_steps());
    p["spec"]["serviceAccountName"] = json!("recovery");
    create(client, p, "default").await;
    // Alerts match the plans the controller knows: wait until it has seen this one.
    wait_plan_validated(client, "default", "guarded", diag).await;

    create(client, alert("first", json!({"app": "db"})), "default").await;
    let name = naming::run_name("guarded", "first");
    let rs = run_finished_as(client, &name, RunPhase::Failed, diag).await;
    assert_eq!(
        rs.steps[0].phase,
        StepPhase::Succeeded,
        "the account may read"
    );
    let msg = rs.steps[1].message.clone().unwrap();
    assert!(msg.contains("forbidden") && msg.contains(sa_user), "{msg}");
    let pod = cluster
        .get("v1", "pods", Some("default"), "my-pod")
        .await
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "sidecar:old");

    cluster
        .allow(sa_user, &["patch"], "", "pods", Some("default"))
        .await;
    create(client, alert("second", json!({"app": "db"})), "default").await;
    let name = naming::run_name("guarded", "second");
    run_finished_as(client, &name, RunPhase::Completed, diag).await;
    let pod = cluster
        .get("v1", "pods", Some("default"), "my-pod")
        .await
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "example-image:v1");
}

/// An invalid plan (SPEC acceptance 8) says what is wrong and never runs.
pub async fn invalid_plan(client: &Client, diag: Diag<'_>) {
    let steps = json!([{"type": "readField", "readField": {"apiVersion": "v1", "resource": "pods",
        "namespace": "default", "name": "my-pod", "fieldPath": "spec.containers[", "outputKey": "x"}}]);
    create(
        client,
        plan("broken", json!({"app": "db"}), steps),
        "default",
    )
    .await;
    let p = wait_plan_validated(client, "default", "broken", diag).await;
    let ps = p.status.unwrap();
    assert_eq!(ps.validation.as_deref(), Some("Invalid"));
    let valid = find_condition(&ps.conditions, TYPE_VALID).expect("Valid condition");
    assert_eq!(valid.status, STATUS_FALSE);
    assert_eq!(valid.reason.as_deref(), Some("Invalid"));
    let msg = valid.message.clone().unwrap();
    assert!(msg.contains("spec.steps[0].readField.fieldPath"), "{msg}");

    create(client, alert("a1", json!({"app": "db"})), "default").await;
    let a = wait_alert_processed(client, "default", "a1", diag).await;
    let st = a.status.unwrap();
    assert!(st.runs.is_empty(), "an invalid plan must never run: {st:?}");
    assert_eq!(st.skipped.len(), 1);
    assert_eq!(st.skipped[0].reason, "Invalid");
    let runs = Api::<RecoveryRun>::namespaced(client.clone(), "default")
        .list(&Default::default())
        .await
        .unwrap();
    assert!(runs.items.is_empty());
}

/// A missing field and a missing template key (SPEC acceptance 8) fail the run with a
/// message naming them; later steps are skipped and nothing is patched.
pub async fn missing_field_and_key(cluster: &TestCluster, client: &Client, diag: Diag<'_>) {
    cluster.apply(seed_pod()).await;
    let mut steps = pod_steps();
    steps[0]["readField"]["fieldPath"] = json!("spec.subdomain");
    create(client, run("missing-field", steps), "default").await;
    let rs = run_finished_as(client, "missing-field", RunPhase::Failed, diag).await;
    assert_eq!(
        rs.steps[0].message.as_deref(),
        Some("field spec.subdomain not found in pods default/my-pod")
    );
    assert_eq!(
        rs.steps[1].phase,
        StepPhase::Skipped,
        "later steps must not run"
    );
    assert!(rs.message.unwrap().contains("spec.subdomain"));

    let mut steps = pod_steps();
    steps[1]["patch"]["override"]["value"]["raw"] = json!("{{ .Alert.Labels.team }}");
    let mut r = run("missing-key", steps);
    r["spec"]["alertSpec"]["labels"] = json!({"app": "db"});
    create(client, r, "default").await;
    let rs = run_finished_as(client, "missing-key", RunPhase::Failed, diag).await;
    let msg = rs.steps[1].message.clone().unwrap();
    assert!(msg.contains("missing key") && msg.contains("team"), "{msg}");
    let pod = cluster
        .get("v1", "pods", Some("default"), "my-pod")
        .await
        .unwrap();
    assert_eq!(
        pod["spec"]["containers"][1]["image"], "sidecar:old",
        "`<no value>` must never be patched in"
    );
}

/// Concurrency policy and suspension (SPEC acceptance 9): a second alert while the plan's run
/// is active is recorded as skipped (Forbid); a suspended plan starts nothing.
pub async fn forbid_and_suspend(client: &Client, diag: Diag<'_>) {
    let steps = json!([{"type": "job", "job": {"template": {
        "metadata": {"annotations": {"sim.lifeboat.dev/duration": "3s"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 3"]}],
                 "restartPolicy": "Never"}}}}]);
    create(client, plan("slow", json!({"app": "db"}), steps), "default").await;
    wait_plan_validated(client, "default", "slow", diag).await;
    create(client, alert("one", json!({"app": "db"})), "default").await;
    let first = wait_alert_processed(client, "default", "one", diag)
        .await
        .status
        .unwrap();
    assert_eq!(first.runs, vec![naming::run_name("slow", "one")]);
    create(client, alert("two", json!({"app": "db"})), "default").await;
    let second = wait_alert_processed(client, "default", "two", diag)
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

    let run = wait_run_finished(client, "default", &first.runs[0], diag).await;
    assert_eq!(run.status.unwrap().phase, RunPhase::Completed);

    Api::<RecoveryPlan>::namespaced(client.clone(), "default")
        .patch(
            "slow",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    // The plan cache must see the suspension before the next alert: wait for the plan
    // controller to observe the new generation.
    wait_plan_validated(client, "default", "slow", diag).await;
    create(client, alert("three", json!({"app": "db"})), "default").await;
    let third = wait_alert_processed(client, "default", "three", diag)
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
}

/// Registers a cluster `name` whose API server is down: `like`'s credentials, pointed at a
/// port nothing listens on.
pub async fn register_unreachable_cluster(home: &Client, name: &str, like: &TestCluster) {
    let mut kubeconfig: Value = serde_yaml::from_str(like.kubeconfig_yaml()).unwrap();
    for c in kubeconfig["clusters"].as_array_mut().unwrap() {
        c["cluster"]["server"] = json!("https://127.0.0.1:1");
    }
    let secret = lifeboat_api::cluster_secret(
        &format!("cluster-{name}"),
        LIFEBOAT_NS,
        name,
        &serde_yaml::to_string(&kubeconfig).unwrap(),
    );
    Api::<Secret>::namespaced(home.clone(), LIFEBOAT_NS)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

/// The guarded failover: a check step (the standby caught up, the primary unreachable by a
/// quorum of probes, the alert still firing) before a patch. Needs `db` registered as
/// `db` and an unreachable cluster as `gone` with `home`.
///
/// First the standby lags 45s: the run stops `Aborted` at the check, names the observed
/// lag, and the patch never runs. Once the lag is 10s, a second alert's run passes the
/// check (2 of 3 probes) and patches.
pub async fn guarded_failover(home: &Client, db: &TestCluster, diag: Diag<'_>) {
    db.apply(configmap("standby", json!({"lag": "45s"}))).await;
    db.apply(configmap("postgres-a", json!({"role": "primary"})))
        .await;
    let steps = json!([
        {"type": "check", "title": "Safe to fail over", "check": {"assertions": [
            {"name": "standby caught up", "field": {"cluster": "db", "apiVersion": "v1",
             "resource": "configmaps", "namespace": "default", "name": "standby",
             "fieldPath": "data.lag", "operator": "LessOrEqual", "value": "30s",
             "compareAs": "Duration"}},
            {"name": "primary down", "quorum": {"required": 2, "of": [
                {"cluster": {"name": "gone", "state": "Unreachable"}},
                {"cluster": {"name": "db", "state": "Unreachable"}},
                {"field": {"cluster": "db", "apiVersion": "v1", "resource": "configmaps",
                 "namespace": "default", "name": "postgres-a", "fieldPath": "data.role",
                 "operator": "Equals", "value": "primary"}}
            ]}},
            {"alertFiring": true}
        ]}},
        {"type": "patch", "title": "Demote the old primary", "cluster": "db",
         "patch": {"apiVersion": "v1", "resource": "configmaps", "namespace": "default",
                   "name": "postgres-a", "override": {"fieldPath": "data.role", "value": {"raw": "replica"}},
                   "patchType": "application/merge-patch+json"}}
    ]);
    create(
        home,
        plan("guarded", json!({"alertname": "PrimaryDown"}), steps),
        "default",
    )
    .await;
    let plan = wait_plan_validated(home, "default", "guarded", diag).await;
    assert_eq!(
        plan.status.and_then(|s| s.validation).as_deref(),
        Some("Valid"),
        "{}",
        diag()
    );

    create(
        home,
        alert("down-1", json!({"alertname": "PrimaryDown", "try": "1"})),
        "default",
    )
    .await;
    let rs = run_finished_as(
        home,
        &naming::run_name("guarded", "down-1"),
        RunPhase::Aborted,
        diag,
    )
    .await;
    let check = &rs.steps[0];
    assert_eq!(check.phase, StepPhase::Failed);
    let lag = &check.evidence[0];
    assert_eq!(
        (lag.assertion.as_str(), lag.passed, lag.observed.as_str()),
        ("standby caught up", false, "45s"),
        "the failed assertion and the value observed: {rs:#?}"
    );
    assert!(
        rs.message.as_deref().unwrap_or_default().contains("45s"),
        "the run's message names the observed value: {:?}",
        rs.message
    );
    let quorum = &check.evidence[1];
    assert!(
        quorum.passed,
        "gone is unreachable, the primary's role reads primary: {quorum:?}"
    );
    assert!(quorum.observed.starts_with("2 of 3 hold"), "{quorum:?}");
    assert!(
        check.evidence[2].passed,
        "the alert is firing: {:?}",
        check.evidence[2]
    );
    assert_eq!(rs.steps[1].phase, StepPhase::Skipped);
    let role = db
        .get("v1", "configmaps", Some("default"), "postgres-a")
        .await
        .unwrap();
    assert_eq!(
        role["data"]["role"], "primary",
        "an aborted run changes nothing"
    );

    db.apply(configmap("standby", json!({"lag": "10s"}))).await;
    create(
        home,
        alert("down-2", json!({"alertname": "PrimaryDown", "try": "2"})),
        "default",
    )
    .await;
    let rs = run_finished_as(
        home,
        &naming::run_name("guarded", "down-2"),
        RunPhase::Completed,
        diag,
    )
    .await;
    let evidence: Vec<(bool, &str)> = rs.steps[0]
        .evidence
        .iter()
        .map(|e| (e.passed, e.observed.as_str()))
        .collect();
    assert_eq!(evidence[0], (true, "10s"), "{evidence:?}");
    let role = db
        .get("v1", "configmaps", Some("default"), "postgres-a")
        .await
        .unwrap();
    assert_eq!(role["data"]["role"], "replica");
}

/// A quorum that is not met aborts, and says which probes held.
pub async fn quorum_not_met(home: &Client, diag: Diag<'_>) {
    let steps = json!([
        {"type": "check", "check": {"assertions": [
            {"quorum": {"required": 2, "of": [
                {"cluster": {"name": "gone", "state": "Unreachable"}},
                {"cluster": {"name": "db", "state": "Unreachable"}}
            ]}}
        ]}},
        {"type": "readField", "readField": {"apiVersion": "v1", "resource": "configmaps",
         "namespace": "default", "name": "kube-root-ca.crt", "fieldPath": "metadata.name",
         "outputKey": "x"}}
    ]);
    create(home, run("quorum", steps), "default").await;
    let rs = run_finished_as(home, "quorum", RunPhase::Aborted, diag).await;
    let e = &rs.steps[0].evidence[0];
    assert!(!e.passed);
    assert!(e.observed.starts_with("1 of 2 hold, 2 required"), "{e:?}");
    assert!(
        e.observed.contains("unreachable"),
        "gone's probe says why: {e:?}"
    );
    assert_eq!(rs.steps[1].phase, StepPhase::Skipped);
}
