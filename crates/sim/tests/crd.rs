//! CustomResourceDefinitions: registration (discovery, Established), custom resource CRUD,
//! pruning, schema validation (422 with causes), status subresource, 415 for strategic
//! merge patch, server-side tables with printer columns, and lifeboat's own CRDs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{api_error, raw, start, wait_for};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use serde_json::json;

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wg"], "categories": ["gadgets"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 1},
                                "mode": {"type": "string", "enum": ["fast", "slow"]},
                                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            },
                        },
                        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                    },
                }},
            }],
        },
    }))
    .unwrap()
}

fn widgets(client: kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    Api::namespaced_with(client, "default", &ar)
}

fn widget(name: &str, spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

#[tokio::test]
async fn crd_registration_then_custom_resource_crud() {
    let (cluster, client) = start("crd").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .unwrap();
    let established = crds.get("widgets.example.com").await.unwrap();
    let conds = established.status.unwrap().conditions.unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True"),
        "Established=True: {conds:?}"
    );

    // Discovery lists the new resource.
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("Widget discovered");
    assert_eq!(ar.plural, "widgets");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "widgets/status" || s.plural == "status"),
        "status subresource discovered"
    );

    let api = widgets(client.clone());
    let created = api
        .create(
            &PostParams::default(),
            &widget(
                "w1",
                json!({"size": 2, "mode": "fast", "unknown": 1, "free": {"anything": [1, 2]}}),
            ),
        )
        .await
        .unwrap();
    assert!(
        created.data["spec"].get("unknown").is_none(),
        "unknown fields are pruned: {}",
        created.data
    );
    assert_eq!(
        created.data["spec"]["free"]["anything"],
        json!([1, 2]),
        "preserve-unknown-fields keeps free-form data"
    );
    assert_eq!(created.metadata.generation, Some(1));

    // Schema violations: 422 with causes.
    let status = api_error(
        api.create(
            &PostParams::default(),
            &widget("w2", json!({"size": 0, "mode": "medium"})),
        )
        .await,
        "invalid widget",
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .starts_with("Widget.example.com \"w2\" is invalid"),
        "{}",
        status.message
    );
    let fields: Vec<String> = status
        .details
        .unwrap()
        .causes
        .iter()
        .map(|c| c.field.clone())
        .collect();
    assert!(
        fields.contains(&"spec.size".to_string()) && fields.contains(&"spec.mode".to_string()),
        "causes name the fields: {fields:?}"
    );
    let status = api_error(
        api.create(&PostParams::default(), &widget("w3", json!({})))
            .await,
        "missing required",
    );
    assert_eq!(status.code, 422);

    // Status subresource split.
    let p = json!({"status": {"phase": "Ready"}});
    let out = api
        .patch("w1", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert!(
        out.data.get("status").is_none_or(|s| s.is_null()),
        "main endpoint ignores status"
    );
    let out = api
        .patch_status("w1", &PatchParams::default(), &Patch::Merge(&p))
        .await
        .unwrap();
    assert_eq!(out.data["status"]["phase"], "Ready");
    assert_eq!(
        out.metadata.generation,
        Some(1),
        "status writes keep generation"
    );
    let out = api
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(
        out.metadata.generation,
        Some(2),
        "spec writes bump generation"
    );

    // Strategic merge patch is not for custom resources.
    let status = api_error(
        api.patch(
            "w1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 4}})),
        )
        .await,
        "SMP on a CR",
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (415, "UnsupportedMediaType")
    );

    // PUT without resourceVersion is invalid for custom resources.
    let mut no_rv = out.clone();
    no_rv.metadata.resource_version = None;
    let status = api_error(
        api.replace("w1", &PostParams::default(), &no_rv).await,
        "PUT without rv",
    );
    assert_eq!(status.code, 422);

    // Server-side tables use the printer columns.
    let addr = cluster.url().trim_start_matches("http://").to_string();
    let table = table_get(&addr, "/apis/example.com/v1/namespaces/default/widgets").await;
    let cols: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        vec!["Name", "Size", "Phase"],
        "printer columns: {table}"
    );
    assert_eq!(table["rows"][0]["cells"], json!(["w1", 3, "Ready"]));

    // Deleting the CRD removes the resource and its objects.
    crds.delete("widgets.example.com", &Default::default())
        .await
        .unwrap();
    let status = api_error(api.get("w1").await, "get after CRD delete");
    assert_eq!(status.code, 404);
    let (code, _) = raw(&cluster, "GET", "/apis/example.com/v1", "", b"").await;
    assert_eq!(code, 404, "group-version gone from discovery");
}

async fn table_get(addr: &str, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn invalid_crds_are_rejected() {
    let (_cluster, client) = start("badcrd").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let mut bad = widget_crd();
    bad.metadata.name = Some("wrong.example.com".into());
    let status = api_error(
        crds.create(&PostParams::default(), &bad).await,
        "CRD with wrong name",
    );
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("metadata.name"),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn lifeboat_crds_and_seed_objects() {
    let (cluster, client) = start("lifeboat-crds").await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in lifeboat_api::crds::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    wait_for("lifeboat CRDs established", Duration::from_secs(5), || {
        let crds = crds.clone();
        async move {
            let list = crds.list(&Default::default()).await.ok()?;
            (list.items.len() == lifeboat_api::crds::all().len()).then_some(())
        }
    })
    .await;
    // The seed examples beside the repository (`../shared`); missing is a failure.
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed-examples");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed examples at {}: {e}", dir.display()));
    let mut applied = 0;
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            if v.is_null() {
                continue;
            }
            let stored = cluster
                .apply_object(v.clone())
                .unwrap_or_else(|e| panic!("{} does not apply: {e}", path.display()));
            assert_eq!(stored["kind"], v["kind"]);
            applied += 1;
        }
    }
    assert!(applied >= 3, "seed objects applied: {applied}");
    let _ = client;
}
