//! The pod log subresource: the text of a pod's `sim.lifeboat.dev/log` annotation (a Job's
//! pods take it from the template), kube-apiserver's 404 and 400s, and RBAC on `pods/log`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{api_error, client_with_token, start, wait_for};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client, ResourceExt};
use lifeboat_sim::jobs::LOG_ANNOTATION;
use serde_json::json;

fn container(name: &str) -> LogParams {
    LogParams {
        container: Some(name.to_string()),
        ..LogParams::default()
    }
}

async fn create_pod(pods: &Api<Pod>, name: &str, containers: &[&str], log: Option<&str>) {
    let cs: Vec<_> = containers
        .iter()
        .map(|c| json!({"name": c, "image": "busybox"}))
        .collect();
    let mut meta = json!({"name": name});
    if let Some(text) = log {
        meta["annotations"] = json!({ LOG_ANNOTATION: text });
    }
    let pod: Pod = serde_json::from_value(json!({"metadata": meta, "spec": {"containers": cs}}))
        .expect("pod parses");
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

#[tokio::test]
async fn a_job_pod_logs_its_template_annotation() {
    let (_cluster, client) = start("logs-job").await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "restore"},
        "spec": {"template": {
            "metadata": {"annotations": {LOG_ANNOTATION: "restoring\nrestored 3 volumes\n"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
        }},
    }))
    .unwrap();
    let job = jobs.create(&PostParams::default(), &job).await.unwrap();
    let uid = job.uid().unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pod = wait_for("the job's pod", Duration::from_secs(20), || {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels("batch.kubernetes.io/job-name=restore"))
                .await
                .ok()?;
            list.items.into_iter().next()
        }
    })
    .await;

    // Made as the job controller makes it.
    let labels = pod.labels();
    for (k, v) in [
        ("batch.kubernetes.io/job-name", "restore"),
        ("job-name", "restore"),
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("controller-uid", uid.as_str()),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
    }
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("restore-"));
    let owner = &pod.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Job", uid.as_str(), Some(true))
    );

    let name = pod.name_any();
    assert_eq!(
        pods.logs(&name, &LogParams::default()).await.unwrap(),
        "restoring\nrestored 3 volumes\n",
        "the only container"
    );
    assert_eq!(
        pods.logs(&name, &container("main")).await.unwrap(),
        "restoring\nrestored 3 volumes\n"
    );
}

#[tokio::test]
async fn missing_pods_and_containers_are_refused_as_kube_apiserver_does() {
    let (_cluster, client) = start("logs-errors").await;
    let v1 = client.list_core_api_resources("v1").await.unwrap();
    let log = v1.resources.iter().find(|r| r.name == "pods/log");
    assert_eq!(
        log.map(|r| (r.kind.as_str(), r.verbs.clone())),
        Some(("Pod", vec!["get".to_string()])),
        "discovery lists the subresource"
    );
    let pods: Api<Pod> = Api::namespaced(client, "default");
    create_pod(&pods, "quiet", &["main"], None).await;
    create_pod(&pods, "pair", &["a", "b"], Some("hello\n")).await;

    assert_eq!(
        pods.logs("quiet", &LogParams::default()).await.unwrap(),
        "",
        "no annotation, no output"
    );
    assert_eq!(pods.logs("pair", &container("b")).await.unwrap(), "hello\n");

    let status = api_error(
        pods.logs("ghost", &LogParams::default()).await,
        "log of a missing pod",
    );
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (404, "NotFound", "pods \"ghost\" not found")
    );
    let status = api_error(
        pods.logs("quiet", &container("sidecar")).await,
        "log of an unknown container",
    );
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (
            400,
            "BadRequest",
            "container sidecar is not valid for pod quiet"
        )
    );
    let status = api_error(
        pods.logs("pair", &LogParams::default()).await,
        "log of a pod with two containers, none named",
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            400,
            "a container name must be specified for pod pair, choose one of: [a b]"
        )
    );
}

async fn create<K>(client: &Client, obj: serde_json::Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let obj: K = serde_json::from_value(obj).unwrap();
    Api::<K>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

/// A Role of `rules` bound to ServiceAccount `default/robot`.
async fn grant(admin: &Client, name: &str, rules: serde_json::Value) {
    create::<Role>(admin, json!({"metadata": {"name": name}, "rules": rules})).await;
    create::<RoleBinding>(
        admin,
        json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}],
        }),
    )
    .await;
}

#[tokio::test]
async fn reading_logs_needs_get_on_pods_log() {
    let (cluster, admin) = start("logs-rbac").await;
    let admin_pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    create_pod(&admin_pods, "worker", &["main"], Some("done\n")).await;
    create::<ServiceAccount>(&admin, json!({"metadata": {"name": "robot"}})).await;
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), "default")
        .create_token_request("robot", &PostParams::default(), &TokenRequest::default())
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let robot: Api<Pod> = Api::namespaced(client_with_token(&cluster, &token).await, "default");

    // Reading pods is not reading their logs.
    grant(
        &admin,
        "pod-reader",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
    )
    .await;
    assert_eq!(robot.get("worker").await.unwrap().name_any(), "worker");
    let status = api_error(
        robot.logs("worker", &LogParams::default()).await,
        "log without pods/log",
    );
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (
            403,
            "Forbidden",
            "pods \"worker\" is forbidden: User \"system:serviceaccount:default:robot\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"default\""
        )
    );

    grant(
        &admin,
        "log-reader",
        json!([{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]),
    )
    .await;
    assert_eq!(
        robot.logs("worker", &LogParams::default()).await.unwrap(),
        "done\n"
    );
    let stats = cluster.stats();
    assert_eq!(
        (
            stats.counts.get(&("get".into(), "pods/log".into(), 403)),
            stats.counts.get(&("get".into(), "pods/log".into(), 200)),
        ),
        (Some(&1), Some(&1)),
        "log requests are counted: {stats}"
    );
}
