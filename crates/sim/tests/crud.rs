//! CRUD semantics of the simulator through `kube::Client`: errors, conflicts,
//! generateName, status subresource, dry runs, selectors, finalizers, paging, patches,
//! malformed requests, audit counters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{api_error, raw, start};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "A", "value": "1"}]}]},
    }))
    .unwrap()
}

#[tokio::test]
async fn create_get_list_replace_delete_and_not_found() {
    let (cluster, client) = start("crud").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = cms
        .create(&PostParams::default(), &cm("c1", &[]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some(), "uid is set on create");
    assert!(
        created.metadata.creation_timestamp.is_some(),
        "creationTimestamp is set"
    );
    let rv1: u64 = created.resource_version().unwrap().parse().unwrap();

    let got = cms.get("c1").await.unwrap();
    assert_eq!(got.data.unwrap()["k"], "v");

    let list = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1, "one configmap listed");
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(
        list_rv >= rv1,
        "list resourceVersion is at least the object's"
    );

    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("k".to_string(), "w".to_string())]));
    let replaced = cms
        .replace("c1", &PostParams::default(), &changed)
        .await
        .unwrap();
    let rv2: u64 = replaced.resource_version().unwrap().parse().unwrap();
    assert!(
        rv2 > rv1,
        "a replace bumps the resourceVersion ({rv1} -> {rv2})"
    );
    assert_eq!(
        replaced.metadata.uid, created.metadata.uid,
        "uid never changes"
    );

    // A no-op replace changes nothing, not even the resourceVersion.
    let same = cms
        .replace("c1", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(
        same.resource_version(),
        replaced.resource_version(),
        "no-op write keeps the version"
    );

    cms.delete("c1", &DeleteParams::default()).await.unwrap();
    let status = api_error(cms.get("c1").await, "get after delete");
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert_eq!(status.message, "configmaps \"c1\" not found");
    let details = status.details.expect("details");
    assert_eq!(details.name, "c1");
    assert_eq!(details.kind, "configmaps");

    // Namespaced objects need their namespace.
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let status = api_error(
        missing.create(&PostParams::default(), &cm("x", &[])).await,
        "create in missing ns",
    );
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"nope\" not found");

    // The simulator starts with default and kube-system.
    let nss: Api<Namespace> = Api::all(client);
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert!(
        names.contains(&"default".to_string()) && names.contains(&"kube-system".to_string()),
        "namespaces: {names:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn conflicts_already_exists_and_stale_versions() {
    let (_cluster, client) = start("conflicts").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = cms
        .create(&PostParams::default(), &cm("c", &[]))
        .await
        .unwrap();
    let status = api_error(
        cms.create(&PostParams::default(), &cm("c", &[])).await,
        "second create",
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.message, "configmaps \"c\" already exists");

    let mut a = first.clone();
    a.data = Some(BTreeMap::from([("k".into(), "a".into())]));
    cms.replace("c", &PostParams::default(), &a).await.unwrap();
    let mut b = first.clone();
    b.data = Some(BTreeMap::from([("k".into(), "b".into())]));
    let status = api_error(
        cms.replace("c", &PostParams::default(), &b).await,
        "replace with stale version",
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("the object has been modified"),
        "conflict message: {}",
        status.message
    );

    // A merge patch carrying a stale resourceVersion conflicts too.
    let stale = first.resource_version().unwrap();
    let p = json!({"metadata": {"resourceVersion": stale}, "data": {"k": "c"}});
    let status = api_error(
        cms.patch("c", &PatchParams::default(), &Patch::Merge(&p))
            .await,
        "patch with stale rv",
    );
    assert_eq!(status.code, 409);
    assert_eq!(
        cms.get("c").await.unwrap().data.unwrap()["k"],
        "a",
        "the stale writes changed nothing"
    );
}

#[tokio::test]
async fn generate_name_and_name_validation() {
    let (_cluster, client) = start("names").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut g = cm("", &[]);
    g.metadata.name = None;
    g.metadata.generate_name = Some("gen-".into());
    let a = cms.create(&PostParams::default(), &g).await.unwrap();
    let b = cms.create(&PostParams::default(), &g).await.unwrap();
    assert!(
        a.name_any().starts_with("gen-") && a.name_any().len() == 9,
        "generated name {}",
        a.name_any()
    );
    assert_ne!(a.name_any(), b.name_any(), "generated names differ");

    let status = api_error(
        cms.create(&PostParams::default(), &cm("Bad_Name", &[]))
            .await,
        "invalid name",
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value"),
        "{}",
        status.message
    );
    let causes = status.details.unwrap().causes;
    assert_eq!(causes[0].field, "metadata.name");
    assert_eq!(causes[0].reason, "FieldValueInvalid");

    let mut unnamed = cm("", &[]);
    unnamed.metadata.name = None;
    let status = api_error(
        cms.create(&PostParams::default(), &unnamed).await,
        "no name",
    );
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("name or generateName is required"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn status_subresource_is_split_from_the_main_resource() {
    let (_cluster, client) = start("status").await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let created = pods
        .create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // Writing status through the main resource is ignored.
    let p = json!({"status": {"phase": "Failed"}, "metadata": {"labels": {"a": "b"}}});
    let after = pods
        .patch("p", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(
        after.status.as_ref().unwrap().phase.as_deref(),
        Some("Running"),
        "main endpoint ignores status"
    );
    assert_eq!(after.labels()["a"], "b", "main endpoint writes metadata");
    assert_eq!(
        after.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );

    // Writing anything but status through /status is ignored.
    let p = json!({"status": {"phase": "Succeeded"}, "metadata": {"labels": {"a": "c"}}, "spec": {"activeDeadlineSeconds": 5}});
    let after = pods
        .patch_status("p", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(
        after.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
    assert_eq!(after.labels()["a"], "b", "/status ignores metadata");
    assert_eq!(
        after.spec.as_ref().unwrap().active_deadline_seconds,
        None,
        "/status ignores spec"
    );
    assert_eq!(
        after.metadata.generation,
        Some(1),
        "status changes do not bump generation"
    );

    // A spec change bumps generation.
    let p = json!({"spec": {"activeDeadlineSeconds": 5}});
    let after = pods
        .patch("p", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(
        after.metadata.generation,
        Some(2),
        "spec changes bump generation"
    );
}

#[tokio::test]
async fn dry_run_persists_nothing() {
    let (_cluster, client) = start("dryrun").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let rv_before = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let out = cms.create(&dry, &cm("d", &[])).await.unwrap();
    assert_eq!(out.name_any(), "d", "dry run returns the object");
    assert_eq!(
        api_error(cms.get("d").await, "get dry-run object").code,
        404,
        "dry-run create stored nothing"
    );
    let rv_after = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    assert_eq!(rv_before, rv_after, "dry run bumps no resourceVersion");

    cms.create(&PostParams::default(), &cm("d", &[]))
        .await
        .unwrap();
    let pp = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let patched = cms
        .patch("d", &pp, &Patch::Merge(json!({"data": {"k": "dry"}})))
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap()["k"],
        "dry",
        "dry-run patch returns the result"
    );
    assert_eq!(
        cms.get("d").await.unwrap().data.unwrap()["k"],
        "v",
        "dry-run patch stored nothing"
    );
    cms.delete(
        "d",
        &DeleteParams {
            dry_run: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(cms.get("d").await.is_ok(), "dry-run delete deleted nothing");
    // Invalid objects fail a dry run like a real one.
    let status = api_error(cms.create(&dry, &cm("Nope!", &[])).await, "invalid dry run");
    assert_eq!(status.code, 422);
}

#[tokio::test]
async fn label_and_field_selectors() {
    let (_cluster, client) = start("selectors").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (n, labels) in [
        ("a", vec![("app", "web"), ("tier", "front")]),
        ("b", vec![("app", "db")]),
        ("c", vec![("tier", "back")]),
    ] {
        cms.create(&PostParams::default(), &cm(n, &labels))
            .await
            .unwrap();
    }
    let names = |sel: &'static str, field: bool| {
        let cms = cms.clone();
        async move {
            let lp = if field {
                ListParams::default().fields(sel)
            } else {
                ListParams::default().labels(sel)
            };
            let mut v: Vec<String> = cms
                .list(&lp)
                .await
                .unwrap()
                .items
                .iter()
                .map(|c| c.name_any())
                .collect();
            v.sort();
            v.join(",")
        }
    };
    assert_eq!(names("app=web", false).await, "a");
    assert_eq!(names("app==db", false).await, "b");
    assert_eq!(names("app!=web", false).await, "b,c");
    assert_eq!(names("app in (web,db)", false).await, "a,b");
    assert_eq!(names("app notin (web)", false).await, "b,c");
    assert_eq!(names("tier", false).await, "a,c");
    assert_eq!(names("!tier", false).await, "b");
    assert_eq!(names("app=web,tier=front", false).await, "a");
    assert_eq!(names("metadata.name=b", true).await, "b");
    assert_eq!(names("metadata.name!=b", true).await, "a,c");
    assert_eq!(names("metadata.namespace=default", true).await, "a,b,c");

    let status = api_error(
        cms.list(&ListParams::default().labels("app in web")).await,
        "bad label selector",
    );
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    let status = api_error(
        cms.list(&ListParams::default().fields("garbage")).await,
        "bad field selector",
    );
    assert_eq!(status.code, 400);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_cluster, client) = start("finalizers").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut c = cm("f", &[]);
    c.metadata.finalizers = Some(vec!["lifeboat.dev/hold".into()]);
    cms.create(&PostParams::default(), &c).await.unwrap();
    cms.delete("f", &DeleteParams::default()).await.unwrap();
    let held = cms
        .get("f")
        .await
        .expect("object with a finalizer survives delete");
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "deletionTimestamp set"
    );
    let p = json!({"metadata": {"finalizers": null}});
    cms.patch("f", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(
        api_error(cms.get("f").await, "get after last finalizer").code,
        404,
        "removing the last finalizer deletes"
    );
}

#[tokio::test]
async fn paging_with_continue_and_expired_tokens() {
    let (cluster, client) = start("paging").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("p{i}"), &[]))
            .await
            .unwrap();
    }
    let page1 = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    let token = page1
        .metadata
        .continue_
        .clone()
        .expect("continue token on a partial page");
    assert_eq!(page1.metadata.remaining_item_count, Some(3));
    let page2 = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let names: Vec<String> = page2.items.iter().map(|c| c.name_any()).collect();
    assert_eq!(
        names,
        vec!["p2", "p3"],
        "second page continues after the first"
    );

    cluster.faults().expire_watches();
    let status = api_error(
        cms.list(&ListParams::default().limit(2).continue_token(&token))
            .await,
        "expired continue",
    );
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn patches_of_every_kind() {
    let (_cluster, client) = start("patches").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();
    // Strategic merge: containers merge by name (of a pod's spec, only images may change).
    let smp = json!({"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}});
    let out = pods
        .patch("p", &PatchParams::default(), &Patch::Strategic(&smp))
        .await
        .unwrap();
    let c = &out.spec.unwrap().containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some("busybox:2"),
        "SMP changed the image"
    );
    let env: Vec<String> = c
        .env
        .clone()
        .unwrap()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(env, vec!["A"], "SMP merged the container by name");
    let smp =
        json!({"spec": {"containers": [{"name": "c", "env": [{"name": "B", "value": "2"}]}]}});
    let status = api_error(
        pods.patch("p", &PatchParams::default(), &Patch::Strategic(&smp))
            .await,
        "pod env change",
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (422, "Invalid"),
        "a pod's env is immutable"
    );
    // JSON patch.
    let jp: json_patch::Patch = serde_json::from_value(
        json!([{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx"}]),
    )
    .unwrap();
    let out = pods
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .unwrap();
    assert_eq!(
        out.spec.unwrap().containers[0].image.as_deref(),
        Some("nginx")
    );
    // JSON patch errors are 422 with the reason.
    let jp: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/metadata/name", "value": "other"}]))
            .unwrap();
    let status = api_error(
        pods.patch("p", &PatchParams::default(), &Patch::<()>::Json(jp))
            .await,
        "failing test op",
    );
    assert_eq!(status.code, 422);
    // Server-side apply creates and updates.
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}});
    let pp = PatchParams::apply("lifeboat-test").force();
    let out = cms
        .patch("ssa", &pp, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(out.data.unwrap()["a"], "1", "apply created the object");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "2", "b": "3"}});
    let out = cms
        .patch("ssa", &pp, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(out.data.unwrap()["b"], "3", "apply updated the object");
}

#[tokio::test]
async fn malformed_requests_get_status_errors() {
    let (cluster, _client) = start("malformed").await;
    let (code, body) = raw(
        &cluster,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        b"{not json",
    )
    .await;
    assert_eq!(code, 400, "bad JSON: {body}");
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "BadRequest");
    assert_eq!(body["status"], "Failure");

    let (code, body) = raw(
        &cluster,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        b"[1,2]",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (400, Some("BadRequest")),
        "non-object body"
    );

    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    let (code, body) = raw(
        &cluster,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/yaml",
        yaml,
    )
    .await;
    assert_eq!(code, 201, "YAML bodies are accepted: {body}");

    let (code, body) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/widgets",
        "",
        b"",
    )
    .await;
    assert_eq!(
        (code, body["kind"].as_str()),
        (404, Some("Status")),
        "unknown resource"
    );
    let (code, _) = raw(&cluster, "GET", "/apis/nope.example.com/v1/things", "", b"").await;
    assert_eq!(code, 404, "unknown group");
    let (code, _) = raw(&cluster, "GET", "/apis/batch/v9/jobs", "", b"").await;
    assert_eq!(code, 404, "unknown version");

    let (code, body) = raw(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/from-yaml",
        "application/merge-patch+json",
        b"{oops",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (400, Some("BadRequest")),
        "bad patch body: {body}"
    );
    let (code, body) = raw(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/from-yaml",
        "application/json-patch+json",
        br#"[{"op":"remove","path":"/data/missing"}]"#,
    )
    .await;
    assert_eq!(code, 422, "JSON patch on a missing path: {body}");
    let (code, body) = raw(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/from-yaml",
        "text/plain",
        b"x",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, _) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20b",
        "",
        b"",
    )
    .await;
    assert_eq!(code, 400, "bad selector");
    let (code, _) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps?limit=x",
        "",
        b"",
    )
    .await;
    assert_eq!(code, 400, "bad limit");
    let (code, _) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=abc",
        "",
        b"",
    )
    .await;
    assert_eq!(code, 400, "bad watch resourceVersion");
    let (code, _) = raw(
        &cluster,
        "POST",
        "/api/v1/namespaces/default/configmaps/x",
        "application/json",
        b"{}",
    )
    .await;
    assert_eq!(code, 405, "POST to an object");

    // Wrongly-typed well-known fields are decoding errors, never a crash.
    for (method, path, ct, body) in [
        (
            "POST",
            "/api/v1/namespaces/default/pods",
            "application/json",
            &br#"{"metadata":{"name":"p"},"spec":"oops"}"#[..],
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            br#"{"metadata":{"name":"c","labels":[1]}}"#,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/secrets",
            "application/json",
            br#"{"metadata":{"name":"s"},"data":"x"}"#,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/from-yaml",
            "application/merge-patch+json",
            br#"{"metadata":"x"}"#,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/from-yaml",
            "application/json-patch+json",
            br#"[{"op":"replace","path":"/metadata","value":7}]"#,
        ),
        (
            "POST",
            "/apis/batch/v1/namespaces/default/jobs",
            "application/json",
            br#"{"metadata":{"name":"j"},"spec":{"template":"x"}}"#,
        ),
    ] {
        let (code, body) = raw(&cluster, method, path, ct, body).await;
        assert_eq!(code, 400, "{method} {path}: {body}");
        assert_eq!(body["kind"], "Status");
    }
    let (code, _) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps/from-yaml",
        "",
        b"",
    )
    .await;
    assert_eq!(code, 200, "the server still answers");
}

#[tokio::test]
async fn namespace_and_owner_deletion_cascade() {
    let (cluster, client) = start("cascade").await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    nss.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let owner = cms
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .unwrap();
    let mut dep = cm("dependent", &[]);
    dep.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner".into(),
            uid: owner.uid().unwrap(),
            ..Default::default()
        },
    ]);
    cms.create(&PostParams::default(), &dep).await.unwrap();
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert_eq!(
        api_error(cms.get("dependent").await, "dependent after owner delete").code,
        404,
        "owned objects are garbage-collected"
    );

    cms.create(&PostParams::default(), &cm("inside", &[]))
        .await
        .unwrap();
    nss.delete("team", &DeleteParams::default()).await.unwrap();
    assert!(
        cluster
            .get_object("v1", "configmaps", Some("team"), "inside")
            .is_none(),
        "namespace deletion removes its objects"
    );
}

#[tokio::test]
async fn direct_store_access_and_request_stats() {
    let (cluster, client) = start("direct").await;
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "direct", "namespace": "default"}, "data": {"a": "1"}});
    let created = cluster.apply_object(obj.clone()).unwrap();
    assert_eq!(created["metadata"]["name"], "direct");
    let mut changed = obj;
    changed["data"]["a"] = json!("2");
    cluster.apply_object(changed).unwrap();
    let got = cluster
        .get_object("v1", "configmaps", Some("default"), "direct")
        .unwrap();
    assert_eq!(got["data"]["a"], "2", "apply_object replaces");
    let err = cluster
        .apply_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "BAD"}}))
        .unwrap_err();
    assert_eq!(err.code(), 422);

    cluster.reset_stats();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.get("direct").await.unwrap();
    cms.get("direct").await.unwrap();
    let _ = cms.get("missing").await;
    cms.list(&ListParams::default()).await.unwrap();
    let stats = cluster.stats();
    assert_eq!(
        stats.count("get", "configmaps"),
        3,
        "three GETs counted:\n{stats}"
    );
    assert_eq!(
        stats.counts.get(&("get".into(), "configmaps".into(), 404)),
        Some(&1),
        "404 counted by code:\n{stats}"
    );
    assert_eq!(stats.count("list", "configmaps"), 1);
    let table = stats.to_string();
    assert!(
        table.contains("VERB") && table.contains("configmaps"),
        "printable table:\n{table}"
    );
}

#[tokio::test]
async fn delete_collection_with_selector() {
    let (_cluster, client) = start("deletecollection").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    for (n, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        cms.create(&PostParams::default(), &cm(n, &[("app", app)]))
            .await
            .unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(left, vec!["c"], "only the selected objects were deleted");
}

#[tokio::test]
async fn garbage_requests_never_break_the_server() {
    let (cluster, _client) = start("garbage").await;
    let cases: Vec<(&str, &str, &str, &[u8])> = vec![
        ("GET", "/api/v1/namespaces//configmaps", "", b""),
        ("GET", "/apis/nope", "", b""),
        ("GET", "/api/v1/namespaces/default/configmaps/x/y/z/w", "", b""),
        ("GET", "/api/v1/namespaces/%zz/configmaps/x", "", b""),
        ("GET", "/api/v1/namespaces/default/configmaps?labelSelector=%E2%9C%93%3D%E2%9C%93", "", b""),
        ("GET", "/api/v1/namespaces/default/configmaps?limit=-1", "", b""),
        ("GET", "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=-5", "", b""),
        ("GET", "/api/v1/namespaces/default/configmaps?continue=%%%", "", b""),
        ("GET", "/api/v1/namespaces/default/configmaps?continue=bm90IGpzb24", "", b""),
        ("GET", "/api/v1/namespaces/default/pods/missing/status", "", b""),
        ("GET", "/api/v1/namespaces/default/configmaps/x/status", "", b""),
        ("GET", "/api/v1/namespaces/default/pods/missing/log", "", b""),
        ("PUT", "/api/v1/namespaces/default/configmaps/a", "application/json", br#"{"metadata":{"name":"b"}}"#),
        ("PUT", "/api/v1/namespaces/default/configmaps/a", "application/json", b"null"),
        ("DELETE", "/api/v1/namespaces/default/configmaps/a", "application/json", b"{bad"),
        ("DELETE", "/api/v1/namespaces/default/configmaps/a", "application/json", br#"{"preconditions":{"uid":"nope"}}"#),
        ("POST", "/api/v1/namespaces", "application/json", br#"{"metadata":{"name":"UPPER"}}"#),
        ("POST", "/api/v1/namespaces/default/configmaps", "application/json", br#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"v"}}"#),
        ("POST", "/api/v1/namespaces/default/configmaps", "application/json", br#"{"kind":"Secret","metadata":{"name":"v"}}"#),
        ("POST", "/api/v1/namespaces/default/configmaps", "application/json", br#"{"metadata":{"name":"v","namespace":"other"}}"#),
        ("POST", "/api/v1/namespaces/default/configmaps", "application/json", br#"{"metadata":{"name":"v"},"data":{"a":1}}"#),
        ("POST", "/api/v1/namespaces/default/configmaps", "application/yaml", b": : :\n\t- ["),
        ("POST", "/api/v1/namespaces/default/configmaps", "application/vnd.kubernetes.protobuf", b"k8s\0\x0a\xff"),
        ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "application/json", br#"{"metadata":{"name":"x"},"spec":{"versions":"nope"}}"#),
        ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "application/json", br#"{"metadata":{"name":"xs.e.com"},"spec":{"group":"e.com","scope":"Namespaced","names":{"plural":"xs","kind":"X"},"versions":[{"name":"v1","served":true,"storage":true,"schema":{"openAPIV3Schema":{"properties":{"a":{}}}}}]}}"#),
        ("PATCH", "/api/v1/namespaces/default/configmaps/missing", "application/apply-patch+yaml", b"[[["),
        ("PATCH", "/api/v1/namespaces/default/configmaps/missing", "application/apply-patch+yaml", b"kind: ConfigMap\n"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/missing?fieldManager=t", "application/apply-patch+yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/missing?fieldManager=t", "application/apply-patch+yaml", b"- 1\n"),
        ("PATCH", "/api/v1/namespaces/default/configmaps", "application/merge-patch+json", b"{}"),
        ("OPTIONS", "/api/v1/namespaces/default/configmaps", "", b""),
        ("GET", "/openapi/v3/apis/nope/v1", "", b""),
        ("GET", "/api/v2", "", b""),
    ];
    for (method, path, ct, body) in cases {
        let (code, resp) = raw(&cluster, method, path, ct, body).await;
        assert!(code >= 400, "{method} {path} should fail: {code} {resp}");
        assert_eq!(
            resp["kind"], "Status",
            "{method} {path} answers a Status: {resp}"
        );
        assert_eq!(resp["code"], code, "{method} {path}: code in body matches");
    }
    let (code, _) = raw(&cluster, "GET", "/api/v1/namespaces", "", b"").await;
    assert_eq!(code, 200, "the server still answers");
}

#[tokio::test]
async fn unknown_fields_of_builtins_are_dropped_or_rejected() {
    let (cluster, client) = start("unknown-fields").await;
    let body = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"typo"},"spec":{"containers":[{"name":"c","image":"i","imagee":"j"}]}}"#;
    let (code, status) = raw(
        &cluster,
        "POST",
        "/api/v1/namespaces/default/pods?fieldValidation=Strict",
        "application/json",
        body,
    )
    .await;
    assert_eq!(
        code, 400,
        "strict validation rejects unknown fields: {status}"
    );
    assert_eq!(
        status["message"],
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.containers[0].imagee\""
    );
    let (code, _) = raw(
        &cluster,
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        body,
    )
    .await;
    assert_eq!(
        code, 201,
        "by default unknown fields are dropped with a warning"
    );
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let stored = serde_json::to_value(pods.get("typo").await.unwrap()).unwrap();
    assert!(
        stored["spec"]["containers"][0].get("imagee").is_none(),
        "unknown field dropped: {stored}"
    );
    assert_eq!(stored["spec"]["containers"][0]["image"], "i");
}

#[tokio::test]
async fn deployment_scale_subresource() {
    let (_cluster, client) = start("scale").await;
    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, "default");
    let d = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    let p = json!({"spec": {"replicas": 4}});
    let scale = deploys
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(4));
    let d = deploys.get("web").await.unwrap();
    assert_eq!(
        d.spec.unwrap().replicas,
        Some(4),
        "scale writes the deployment"
    );
    assert_eq!(d.metadata.generation, Some(2), "scaling is a spec change");
    assert_eq!(
        d.status.unwrap().ready_replicas,
        Some(4),
        "the simulated rollout is immediate"
    );
}

#[tokio::test]
async fn service_ports_are_defaulted_like_kube_apiserver() {
    let (_cluster, client) = start("svc-defaults").await;
    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(client, "default");
    let svc = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "db"},
        "spec": {"selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]},
    }))
    .unwrap();
    let created = services.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.unwrap();
    let port = &spec.ports.unwrap()[0];
    assert_eq!(
        port.protocol.as_deref(),
        Some("TCP"),
        "protocol defaults to TCP"
    );
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(5432)),
        "targetPort defaults to port"
    );
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
}
