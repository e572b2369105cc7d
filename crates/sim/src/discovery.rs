//! Discovery (`/version`, `/api`, `/apis`, group-version resource lists) and the OpenAPI
//! documents kubectl reads.
//!
//! Discovery is served in the legacy (unaggregated) form with `Content-Type:
//! application/json`; kubectl asks for aggregated discovery first and falls back to the
//! legacy documents when the response is not of the aggregated media type.
//!
//! The OpenAPI v3 documents describe, per group-version, one PATCH operation per kind
//! with the `fieldValidation` parameter, so kubectl leaves field validation to the server
//! (which prunes/validates custom resources against their CRD schema and answers strict
//! requests with `unknown field` errors). Built-in kinds do not advertise strategic merge
//! patch in OpenAPI v3 and `/openapi/v2` is not served as protobuf: kubectl then computes
//! `kubectl apply` patches for built-ins from its compiled-in types, which carry the
//! exact merge keys and strategies (containers by name, env by name, …), and uses JSON
//! merge patch for custom resources, as it does against a real cluster.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::registry::ResourceInfo;

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-lifeboat-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Group → versions in the order first served.
fn groups(resources: &[ResourceInfo]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in resources {
        if r.group.is_empty() {
            continue;
        }
        let vs = out.entry(r.group.clone()).or_default();
        if !vs.contains(&r.version) {
            vs.push(r.version.clone());
        }
    }
    out
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
fn version_rank(v: &str) -> (u8, i64, i64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major: i64 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    (level, major, num.parse().unwrap_or(0))
}

/// `/apis`.
pub fn group_list(resources: &[ResourceInfo]) -> Value {
    let groups: Vec<Value> = groups(resources)
        .into_iter()
        .map(|(g, mut vs)| {
            vs.sort_by_key(|v| std::cmp::Reverse(version_rank(v)));
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            let preferred = versions.first().cloned().unwrap_or(Value::Null);
            json!({"name": g, "versions": versions, "preferredVersion": preferred})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(resources: &[ResourceInfo], name: &str) -> Option<Value> {
    let list = group_list(resources);
    let g = list["groups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == name)?
        .clone();
    let mut g = g;
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/api/v1` or `/apis/<group>/<version>`, or `None` when nothing is served there.
pub fn resource_list(resources: &[ResourceInfo], group: &str, version: &str) -> Option<Value> {
    let mut list = Vec::new();
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": VERBS,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        list.push(e);
        // A subresource of the resource's kind; token and scale name their own kinds.
        let sub = |name: &str, verbs: &[&str]| {
            json!({
                "name": format!("{}/{name}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": verbs,
            })
        };
        let of_kind = |mut e: Value, group: &str, kind: &str| {
            e["group"] = json!(group);
            e["version"] = json!("v1");
            e["kind"] = json!(kind);
            e
        };
        if r.has_status {
            list.push(sub("status", &["get", "patch", "update"]));
        }
        if r.group.is_empty() && r.plural == "pods" {
            list.push(sub("log", &["get"]));
        }
        if r.group.is_empty() && r.plural == "serviceaccounts" {
            list.push(of_kind(
                sub("token", &["create"]),
                "authentication.k8s.io",
                "TokenRequest",
            ));
        }
        if r.group == "apps" && r.plural == "deployments" {
            list.push(of_kind(
                sub("scale", &["get", "patch", "update"]),
                "autoscaling",
                "Scale",
            ));
        }
    }
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": list,
    }))
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn openapi_v3_index(resources: &[ResourceInfo]) -> Value {
    let mut paths = serde_json::Map::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in resources {
        if seen.insert((r.group.clone(), r.version.clone())) {
            let p = gv_path(&r.group, &r.version);
            let hash = format!(
                "{:016X}",
                fxhash(&openapi_v3_doc(resources, &r.group, &r.version).to_string())
            );
            paths.insert(
                p.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// `/openapi/v3/<api/v1|apis/g/v>`.
pub fn openapi_v3_doc(resources: &[ResourceInfo], group: &str, version: &str) -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let prefix = format!("/{}", gv_path(group, version));
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let item = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let mut content = serde_json::Map::new();
        for ct in [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ] {
            content.insert(ct.into(), json!({"schema": {"type": "object"}}));
        }
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
        ]);
        let schema_name = format!(
            "{}.{}.{}",
            if r.group.is_empty() {
                "io.k8s.api.core"
            } else {
                r.group.as_str()
            },
            r.version,
            r.kind
        );
        let reference = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        paths.insert(
            item,
            json!({
                "get": {
                    "operationId": format!("read{}", r.kind),
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
                },
                "put": {
                    "operationId": format!("replace{}", r.kind),
                    "x-kubernetes-action": "put",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": params,
                    "requestBody": {"content": {"application/json": {"schema": reference}}},
                    "responses": {"200": {"description": "OK"}},
                },
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": params,
                    "requestBody": {"content": content},
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
                },
            }),
        );
        let mut schema = json!({
            "type": "object",
            "x-kubernetes-group-version-kind": [gvk],
            "x-kubernetes-preserve-unknown-fields": true,
        });
        if let Some(props) = r.openapi_schema() {
            schema = props;
            schema["x-kubernetes-group-version-kind"] =
                json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
        }
        schemas.insert(schema_name, schema);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// `/openapi/v2` as JSON (served only to clients that accept JSON).
pub fn openapi_v2() -> Value {
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": {},
        "definitions": {},
    })
}
