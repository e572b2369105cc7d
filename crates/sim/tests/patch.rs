//! The simulator's patch engines: strategic merge patch on built-in kinds, merge patch,
//! JSON Patch error mapping, server-side apply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lifeboat_sim::patch::{MergeKeys, PatchError, PatchKind, apply_patch};
use serde_json::{Value, json};

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "db-0", "namespace": "default", "labels": {"app": "db", "tier": "data"}},
        "spec": {
            "containers": [
                {
                    "name": "postgres",
                    "image": "postgres:15",
                    "env": [
                        {"name": "ROLE", "value": "primary"},
                        {"name": "PGDATA", "value": "/data"}
                    ],
                    "ports": [{"containerPort": 5432, "name": "pg"}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                },
                {"name": "exporter", "image": "exporter:1", "args": ["--a", "--b"]}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    })
}

fn smp(current: &Value, patch: Value) -> Result<Value, PatchError> {
    apply_patch(
        PatchKind::Strategic,
        current,
        patch.to_string().as_bytes(),
        &MergeKeys::for_builtin("", "Pod"),
    )
}

#[test]
fn content_types_map_to_patch_kinds() {
    assert_eq!(
        PatchKind::from_content_type("application/json-patch+json"),
        Some(PatchKind::Json)
    );
    assert_eq!(
        PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchKind::Merge)
    );
    assert_eq!(
        PatchKind::from_content_type("application/strategic-merge-patch+json"),
        Some(PatchKind::Strategic)
    );
    assert_eq!(
        PatchKind::from_content_type("application/apply-patch+yaml"),
        Some(PatchKind::Apply)
    );
    assert_eq!(PatchKind::from_content_type("application/json"), None);
}

#[test]
fn smp_merges_pod_containers_by_name() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "exporter", "image": "exporter:2"}]}}),
    )
    .unwrap();
    let containers = out["spec"]["containers"].as_array().unwrap();
    assert_eq!(
        containers.len(),
        2,
        "no container may be lost or added: {out}"
    );
    assert_eq!(
        containers[0]["image"], "postgres:15",
        "untouched container changed"
    );
    assert_eq!(
        containers[1]["image"], "exporter:2",
        "named container not updated"
    );
    assert_eq!(
        containers[1]["args"],
        json!(["--a", "--b"]),
        "fields of the merged container not named in the patch must be kept"
    );

    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"name": "sidecar", "image": "envoy"}]}}),
    )
    .unwrap();
    let names: Vec<&str> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // kube-apiserver's order: the patch's elements first where the original does not
    // place them (checked against kube-apiserver v1.37).
    assert_eq!(
        names,
        ["sidecar", "postgres", "exporter"],
        "a new container goes before the ones the patch does not name"
    );
}

#[test]
fn smp_merges_env_by_name_and_other_lists_replace() {
    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{
            "name": "postgres",
            "env": [{"name": "ROLE", "value": "standby"}, {"name": "NEW", "value": "1"}],
            "ports": [{"containerPort": 5432, "protocol": "TCP"}]
        }, {"name": "exporter", "args": ["--c"]}]}}),
    )
    .unwrap();
    let pg = &out["spec"]["containers"][0];
    assert_eq!(
        pg["env"],
        json!([
            {"name": "ROLE", "value": "standby"},
            {"name": "NEW", "value": "1"},
            {"name": "PGDATA", "value": "/data"}
        ]),
        "env merges by name, in kube-apiserver's order"
    );
    assert_eq!(
        pg["ports"],
        json!([{"containerPort": 5432, "name": "pg", "protocol": "TCP"}]),
        "ports merge by containerPort"
    );
    assert_eq!(
        out["spec"]["containers"][1]["args"],
        json!(["--c"]),
        "args has no merge key: it is replaced"
    );
}

#[test]
fn smp_null_deletes_a_field() {
    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"tier": null}}, "spec": {"containers": [{"name": "exporter", "args": null}]}}),
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "db"}),
        "label tier deleted"
    );
    assert!(
        out["spec"]["containers"][1].get("args").is_none(),
        "args deleted: {}",
        out["spec"]["containers"][1]
    );
}

#[test]
fn smp_patch_delete_directive_removes_list_element_and_map() {
    let out = smp(
        &pod(),
        json!({"spec": {
            "containers": [{"name": "exporter", "$patch": "delete"}],
            "volumes": [{"name": "data", "$patch": "delete"}]
        }}),
    )
    .unwrap();
    let containers = out["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "exporter deleted: {out}");
    assert_eq!(containers[0]["name"], "postgres");
    assert_eq!(out["spec"]["volumes"], json!([]), "volume data deleted");

    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert!(
        out["metadata"].get("labels").is_none(),
        "labels map deleted"
    );
}

#[test]
fn smp_patch_replace_directive_and_retain_keys() {
    let out = smp(
        &pod(),
        json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));

    let out = smp(
        &pod(),
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "x"}]}}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "solo", "image": "x"}]),
        "$patch: replace in a list replaces the list"
    );

    let out = smp(
        &pod(),
        json!({"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/mnt"}}]}}),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "data", "hostPath": {"path": "/mnt"}}]),
        "$retainKeys drops emptyDir"
    );

    let out = smp(
        &pod(),
        json!({"$setElementOrder/containers": [{"name": "exporter"}, {"name": "postgres"}],
               "spec": {"containers": [{"name": "postgres", "image": "postgres:16"}]}}),
    )
    .unwrap();
    assert!(
        out.as_object().unwrap().keys().all(|k| !k.starts_with('$')),
        "directives never end up in the object: {out}"
    );
    assert_eq!(out["spec"]["containers"][0]["image"], "postgres:16");
}

#[test]
fn smp_on_deployment_and_service_use_their_merge_keys() {
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "proxy", "image": "haproxy:2"}
        ]}}}
    });
    let out = apply_patch(
        PatchKind::Strategic,
        &deploy,
        br#"{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"B","value":"2"}]}]}}}}"#,
        &MergeKeys::for_builtin("apps", "Deployment"),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][1]["image"],
        "haproxy:2"
    );

    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"ports": [{"port": 5432, "targetPort": 5432}, {"port": 9187, "targetPort": 9187}]}
    });
    let out = apply_patch(
        PatchKind::Strategic,
        &svc,
        br#"{"spec":{"ports":[{"port":5432,"targetPort":6432}]}}"#,
        &MergeKeys::for_builtin("", "Service"),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 5432, "targetPort": 6432}, {"port": 9187, "targetPort": 9187}])
    );
}

#[test]
fn smp_on_custom_resources_is_415() {
    let cr = json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan", "metadata": {"name": "p"}});
    for keys in [
        MergeKeys::none(),
        MergeKeys::for_builtin("recovery.elotl.co", "RecoveryPlan"),
    ] {
        let err = apply_patch(PatchKind::Strategic, &cr, br#"{"spec":{}}"#, &keys).unwrap_err();
        assert_eq!(err.http_code(), 415, "{err}");
        assert_eq!(err.reason(), "UnsupportedMediaType");
        assert!(
            err.to_string().contains("application/merge-patch+json"),
            "the message lists the accepted media types: {err}"
        );
    }
}

#[test]
fn merge_patch_replaces_arrays_and_deletes_nulls() {
    let out = apply_patch(
        PatchKind::Merge,
        &pod(),
        br#"{"metadata":{"labels":{"tier":null,"new":"x"}},"spec":{"containers":[{"name":"only"}]}}"#,
        &MergeKeys::for_builtin("", "Pod"),
    )
    .unwrap();
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "only"}]),
        "a merge patch replaces arrays whole, even on built-in kinds"
    );
    assert_eq!(out["metadata"]["labels"], json!({"app": "db", "new": "x"}));
}

#[test]
fn json_patch_errors_map_to_422_and_bad_bodies_to_400() {
    let current = pod();
    let keys = MergeKeys::for_builtin("", "Pod");
    let cases: [(&[u8], u16, &str); 6] = [
        (
            br#"[{"op":"test","path":"/spec/containers/0/image","value":"nope"}]"#,
            422,
            "test operation",
        ),
        (
            br#"[{"op":"replace","path":"/spec/missing/field","value":1}]"#,
            422,
            "/spec/missing/field",
        ),
        (
            br#"[{"op":"remove","path":"/spec/containers/7"}]"#,
            422,
            "remove",
        ),
        (br#"{"op":"add"}"#, 400, "array"),
        (br#"[{"op":"frobnicate","path":"/a"}]"#, 400, "frobnicate"),
        (b"not json", 400, "error decoding patch"),
    ];
    for (body, code, needle) in cases {
        let err = apply_patch(PatchKind::Json, &current, body, &keys).unwrap_err();
        let body = String::from_utf8_lossy(body);
        assert_eq!(err.http_code(), code, "{body}: {err}");
        assert!(
            err.to_string().contains(needle),
            "{body}: message {err:?} should mention {needle:?}"
        );
    }
    let err = apply_patch(
        PatchKind::Json,
        &current,
        br#"[{"op":"test","path":"/kind","value":"Pod"},{"op":"replace","path":"","value":[1]}]"#,
        &keys,
    )
    .unwrap_err();
    assert_eq!(
        err.reason(),
        "Invalid",
        "a patch turning the object into a list: {err}"
    );

    let out = apply_patch(
        PatchKind::Json,
        &current,
        br#"[{"op":"replace","path":"/spec/containers/1/image","value":"exporter:9"}]"#,
        &keys,
    )
    .unwrap();
    assert_eq!(out["spec"]["containers"][1]["image"], "exporter:9");
}

#[test]
fn server_side_apply_creates_and_updates() {
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"1\"\n";
    let keys = MergeKeys::for_builtin("", "ConfigMap");
    let created = apply_patch(PatchKind::Apply, &json!({}), yaml, &keys).unwrap();
    assert_eq!(
        created,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}})
    );
    let mut current = created.clone();
    current["metadata"]["resourceVersion"] = json!("7");
    let updated = apply_patch(
        PatchKind::Apply,
        &current,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  b: \"2\"\n",
        &keys,
    )
    .unwrap();
    assert_eq!(updated["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(
        updated["metadata"]["resourceVersion"], "7",
        "server fields kept"
    );

    // Lists of custom resources are replaced; built-in containers merge by name.
    let cr = json!({"apiVersion": "x.io/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"items": [1, 2]}});
    let out = apply_patch(
        PatchKind::Apply,
        &cr,
        br#"{"apiVersion":"x.io/v1","kind":"Thing","metadata":{"name":"t"},"spec":{"items":[3]}}"#,
        &MergeKeys::none(),
    )
    .unwrap();
    assert_eq!(out["spec"]["items"], json!([3]));
    let out = apply_patch(
        PatchKind::Apply,
        &pod(),
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: db-0\nspec:\n  containers:\n  - name: exporter\n    image: exporter:3\n",
        &MergeKeys::for_builtin("", "Pod"),
    )
    .unwrap();
    assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 2);
    assert_eq!(out["spec"]["containers"][1]["image"], "exporter:3");

    let err = apply_patch(
        PatchKind::Apply,
        &current,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n",
        &keys,
    )
    .unwrap_err();
    assert_eq!(err.http_code(), 400, "{err}");
    let err = apply_patch(
        PatchKind::Apply,
        &current,
        b"metadata:\n  name: cfg\n",
        &keys,
    )
    .unwrap_err();
    assert!(err.to_string().contains("apiVersion"), "{err}");
}

/// `$setElementOrder/<list>` orders the merged list, also when the patch only reorders; a
/// merged list of scalars (finalizers) gets new elements first. Each result as
/// kube-apiserver v1.37 gives it for the same object and patch.
#[test]
fn smp_set_element_order_and_scalar_lists_follow_kube_apiserver() {
    let deploy = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "finalizers": ["x.io/b"]},
        "spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "s"}, {"name": "postgres", "image": "p"},
            {"name": "exporter", "image": "e"}
        ]}}}
    });
    let keys = MergeKeys::for_builtin("apps", "Deployment");
    let names = |v: &Value| -> Vec<String> {
        v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let out = apply_patch(
        PatchKind::Strategic,
        &deploy,
        br#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"sidecar"},{"name":"postgres"},{"name":"exporter"},{"name":"extra"}],"containers":[{"name":"extra","image":"x"}]}}}}"#,
        &keys,
    )
    .unwrap();
    assert_eq!(names(&out), ["sidecar", "postgres", "exporter", "extra"]);
    let out = apply_patch(
        PatchKind::Strategic,
        &out,
        br#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"extra"},{"name":"postgres"},{"name":"exporter"},{"name":"sidecar"}]}}}}"#,
        &keys,
    )
    .unwrap();
    assert_eq!(names(&out), ["extra", "postgres", "exporter", "sidecar"]);
    let out = apply_patch(
        PatchKind::Strategic,
        &out,
        br#"{"metadata":{"finalizers":["x.io/a"]}}"#,
        &keys,
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["x.io/a", "x.io/b"]));
}
