//! The semantics of the Kubernetes API verbs on the store: create, get, list, update,
//! patch, delete, deletecollection — validation, defaulting, resourceVersion checks,
//! generation, status subresource, finalizers, dry runs, garbage collection.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::{Cause, Reason, SimError, cause};
use crate::kinds;
use crate::object::{meta_str, now_rfc3339, random_suffix};
use crate::patch::{self, PatchKind};
use crate::registry::{self, ResourceInfo};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Store;

/// Everything a cluster holds: objects and the resources it serves.
pub struct State {
    /// Objects.
    pub store: Store,
    /// Served resources (built-ins first, then CRD versions).
    pub resources: Vec<ResourceInfo>,
    /// `Warning` headers for the response of the request being handled.
    pub warnings: Vec<String>,
}

/// The parsed query string.
pub type Query = HashMap<String, String>;

/// One resource request, after routing.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    /// The resource.
    pub res: ResourceInfo,
    /// Namespace from the path ("" for cluster-scoped or all namespaces).
    pub namespace: String,
    /// Name from the path ("" for collections).
    pub name: String,
    /// `status` (or another subresource).
    pub subresource: Option<String>,
    /// Query parameters.
    pub query: Query,
    /// `Content-Type` of the body.
    pub content_type: String,
    /// Request body.
    pub body: bytes::Bytes,
}

impl ApiRequest {
    fn dry_run(&self) -> Result<bool, SimError> {
        match self.query.get("dryRun").map(String::as_str) {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            // kube-apiserver validates the options object: 422, like an invalid object.
            Some(other) => Err(SimError::new(
                Reason::Invalid,
                format!(
                    "dryRun: Unsupported value: []string{{\"{other}\"}}: supported values: \"All\""
                ),
            )),
        }
    }

    fn is_status(&self) -> bool {
        self.subresource.as_deref() == Some("status")
    }
}

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn path_segment_problems(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// Validate `metadata.name` of an object of this resource.
fn name_causes(res: &ResourceInfo, name: &str) -> Vec<Cause> {
    if res.group == "rbac.authorization.k8s.io" {
        // RBAC names only have to be path segments (`system:controller:x` is fine).
        return path_segment_problems(name)
            .into_iter()
            .map(|p| {
                cause(
                    "FieldValueInvalid",
                    "metadata.name",
                    format!("Invalid value: \"{name}\": {p}"),
                )
            })
            .collect();
    }
    let label_only = matches!(res.plural.as_str(), "namespaces" | "services");
    let ok = if label_only {
        is_dns_label(name)
    } else {
        is_dns_subdomain(name)
    };
    if ok {
        return Vec::new();
    }
    let mut msg = format!("Invalid value: \"{name}\": ");
    if label_only {
        msg.push_str(DNS1123_LABEL_MSG);
    } else {
        msg.push_str(DNS1123_SUBDOMAIN_MSG);
    }
    vec![cause("FieldValueInvalid", "metadata.name", msg)]
}

fn label_causes(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(labels) = obj["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            let Some(v) = v.as_str() else {
                out.push(cause(
                    "FieldValueTypeInvalid",
                    &format!("metadata.labels.{k}"),
                    "Invalid value: must be a string",
                ));
                continue;
            };
            let valid = crate::selector::LabelSelector::parse(&format!("{k}={v}")).is_ok();
            if !valid {
                out.push(cause(
                    "FieldValueInvalid",
                    "metadata.labels",
                    format!("Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"),
                ));
            }
        }
    }
    out
}

/// Parse a request body (JSON, or YAML by Content-Type) into a JSON object.
pub fn parse_body(content_type: &str, body: &[u8]) -> Result<Value, SimError> {
    if content_type.contains("protobuf") {
        return crate::protobuf::decode(body).ok_or_else(|| {
            SimError::new(
                Reason::UnsupportedMediaType,
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            )
        });
    }
    let v: Value = if content_type.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| SimError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            SimError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if !v.is_object() {
        return Err(SimError::bad_request(
            "Object 'Kind' is missing in the request body: not a JSON object",
        ));
    }
    if !v["metadata"].is_null() && !v["metadata"].is_object() {
        return Err(SimError::bad_request("metadata: expected an object"));
    }
    Ok(v)
}

/// A stored object as served under the version of `res` (stored objects keep the version
/// they were written in); copied only when that differs.
fn served_as(mut obj: Arc<Value>, res: &ResourceInfo) -> Arc<Value> {
    let api_version = res.api_version();
    if obj["apiVersion"] != api_version.as_str() {
        Arc::make_mut(&mut obj)["apiVersion"] = Value::String(api_version);
    }
    obj
}

/// Check and fill `apiVersion`/`kind`.
fn type_meta(res: &ResourceInfo, obj: &mut Value) -> Result<(), SimError> {
    let want_av = res.api_version();
    match obj["apiVersion"].as_str() {
        None | Some("") => obj["apiVersion"] = Value::String(want_av.clone()),
        Some(av) if av == want_av => {}
        Some(av) => {
            return Err(SimError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )));
        }
    }
    match obj["kind"].as_str() {
        None | Some("") => obj["kind"] = Value::String(res.kind.clone()),
        Some(k) if k == res.kind => {}
        Some(k) => {
            return Err(SimError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )));
        }
    }
    if obj["metadata"].is_null() {
        obj["metadata"] = json!({});
    }
    check_shape(res, obj)
}

/// Reject objects whose well-known fields have the wrong JSON type, as kube-apiserver's
/// decoder does (400), so later steps can rely on their shape.
fn check_shape(res: &ResourceInfo, obj: &Value) -> Result<(), SimError> {
    let bad = |path: &str, want: &str| {
        SimError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: json: cannot unmarshal into Go struct field {kind}.{path} of type {want}",
            kind = res.kind,
            version = res.version,
        ))
    };
    let check = |path: &[&str], want: &str| -> Result<(), SimError> {
        let mut v = obj;
        for seg in path {
            v = &v[*seg];
        }
        let ok = match want {
            "object" => v.is_null() || v.is_object(),
            "array" => v.is_null() || v.is_array(),
            _ => v.is_null() || v.is_string(),
        };
        if ok {
            Ok(())
        } else {
            Err(bad(&path.join("."), want))
        }
    };
    check(&["metadata"], "object")?;
    for (f, want) in [
        ("labels", "object"),
        ("annotations", "object"),
        ("finalizers", "array"),
        ("ownerReferences", "array"),
        ("name", "string"),
        ("namespace", "string"),
        ("generateName", "string"),
        ("resourceVersion", "string"),
        ("uid", "string"),
    ] {
        check(&["metadata", f], want)?;
    }
    if !res.custom {
        for f in ["spec", "status", "data", "stringData", "binaryData"] {
            check(&[f], "object")?;
        }
        for p in [
            &["spec", "template"][..],
            &["spec", "template", "metadata"],
            &["spec", "template", "metadata", "labels"],
            &["spec", "template", "metadata", "annotations"],
            &["spec", "template", "spec"],
            &["spec", "selector"],
            &["status", "loadBalancer"],
        ] {
            check(p, "object")?;
        }
        for p in [
            &["spec", "containers"][..],
            &["spec", "ports"],
            &["spec", "template", "spec", "containers"],
            &["status", "conditions"],
            &["status", "containerStatuses"],
        ] {
            check(p, "array")?;
        }
    }
    Ok(())
}

/// Everything but metadata and status: what `generation` tracks.
/// Whether `a` and `b` have the same spec part: everything but metadata, type meta and
/// (with a status subresource) status. Compared in place: objects can be large.
fn same_spec(a: &Value, b: &Value, has_status: bool) -> bool {
    let skip =
        |k: &str| matches!(k, "metadata" | "apiVersion" | "kind") || (has_status && k == "status");
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            a.iter()
                .filter(|(k, _)| !skip(k))
                .all(|(k, v)| b.get(k) == Some(v))
                && b.keys().filter(|k| !skip(k)).count() == a.keys().filter(|k| !skip(k)).count()
        }
        _ => a == b,
    }
}

/// Whether `a` equals `b` apart from `apiVersion`.
fn same_but_api_version(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(ma), Some(mb)) => {
            ma.iter()
                .filter(|(k, _)| *k != "apiVersion")
                .all(|(k, v)| mb.get(k) == Some(v))
                && ma.keys().filter(|k| *k != "apiVersion").count()
                    == mb.keys().filter(|k| *k != "apiVersion").count()
        }
        _ => a == b,
    }
}

impl State {
    /// A fresh cluster state with the built-in resources and the `default` and
    /// `kube-system` namespaces.
    pub fn new() -> State {
        let mut st = State {
            store: Store::new(),
            resources: registry::builtins(),
            warnings: Vec::new(),
        };
        for ns in ["default", "kube-system", "kube-public"] {
            let obj = json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {
                    "name": ns, "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": now_rfc3339(),
                    "labels": {"kubernetes.io/metadata.name": ns},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            st.store.put("/namespaces", obj);
        }
        let sa = json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": "default",
                "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": now_rfc3339()},
        });
        st.store.put("/serviceaccounts", sa);
        st
    }

    /// Find a served resource by group, version and plural (or `plural` may be a kind in
    /// lower case, singular name or short name for convenience of direct callers).
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .or_else(|| {
                self.resources.iter().find(|r| {
                    r.group == group
                        && r.version == version
                        && (r.singular == plural
                            || r.kind == plural
                            || r.short_names.iter().any(|s| s == plural))
                })
            })
            .cloned()
    }

    /// Find a served resource by `apiVersion` and `kind`.
    pub fn resource_for_kind(&self, api_version: &str, kind: &str) -> Option<ResourceInfo> {
        let (group, version) = split_api_version(api_version);
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    /// The stored object a request names, or kube-apiserver's 404.
    fn stored(&self, req: &ApiRequest) -> Result<Arc<Value>, SimError> {
        let res = &req.res;
        self.store
            .get_shared(&res.storage_key(), &req.namespace, &req.name)
            .cloned()
            .ok_or_else(|| SimError::not_found(&res.group, &res.plural, &req.name))
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.store.get("/namespaces", "", ns).is_some()
    }

    /// GET one object.
    pub fn get(&self, req: &ApiRequest) -> Result<Arc<Value>, SimError> {
        Ok(served_as(self.stored(req)?, &req.res))
    }

    /// LIST objects (selectors, paging).
    pub fn list(&self, req: &ApiRequest) -> Result<Value, SimError> {
        let res = &req.res;
        let labels = LabelSelector::parse(req.query.get("labelSelector").map_or("", |s| s))
            .map_err(SimError::bad_request)?;
        let fields = FieldSelector::parse(req.query.get("fieldSelector").map_or("", |s| s))
            .map_err(SimError::bad_request)?;
        let limit: usize = match req.query.get("limit").map(String::as_str) {
            None | Some("") => 0,
            Some(l) => l
                .parse()
                .map_err(|_| SimError::bad_request(format!("invalid value for limit: \"{l}\"")))?,
        };
        let mut rv = self.store.rv();
        let mut start_after: Option<(String, String)> = None;
        if let Some(token) = req.query.get("continue").filter(|t| !t.is_empty()) {
            let (trv, ns, name) = decode_continue(token)?;
            if trv < self.store.compacted() {
                return Err(SimError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ));
            }
            rv = trv;
            start_after = Some((ns, name));
        }
        let ns_filter =
            (res.namespaced && !req.namespace.is_empty()).then_some(req.namespace.as_str());
        let av = res.api_version();
        let mut items = Vec::new();
        let mut more = false;
        let mut remaining = 0usize;
        let mut last_key = None;
        if let Some(all) = self.store.all(&res.storage_key()) {
            let iter = all.iter().filter(|((ns, name), _)| {
                start_after
                    .as_ref()
                    .is_none_or(|(sns, sname)| (ns, name) > (sns, sname))
                    && ns_filter.is_none_or(|want| want == ns)
            });
            for (key, obj) in iter {
                if !labels.matches(obj) || !fields.matches(obj) {
                    continue;
                }
                if limit > 0 && items.len() >= limit {
                    more = true;
                    remaining += 1;
                    continue;
                }
                let mut o = Value::clone(obj);
                o["apiVersion"] = Value::String(av.clone());
                items.push(o);
                last_key = Some(key.clone());
            }
        }
        let mut metadata = Map::new();
        metadata.insert("resourceVersion".into(), Value::String(rv.to_string()));
        if more && let Some((ns, name)) = last_key {
            metadata.insert(
                "continue".into(),
                Value::String(encode_continue(rv, &ns, &name)),
            );
            metadata.insert("remainingItemCount".into(), json!(remaining));
        } else if res.custom {
            // Custom resources are listed as unstructured lists, which always have one.
            metadata.insert("continue".into(), json!(""));
        }
        Ok(json!({
            "kind": format!("{}List", res.kind),
            "apiVersion": av,
            "metadata": metadata,
            "items": items,
        }))
    }

    /// POST: create an object. Returns (201, object).
    pub fn create(&mut self, req: &ApiRequest) -> Result<(u16, Arc<Value>), SimError> {
        let obj = parse_body(&req.content_type, &req.body)?;
        self.create_object(req, obj)
    }

    /// Create from an already parsed object (POST, or server-side apply of a new object).
    pub fn create_object(
        &mut self,
        req: &ApiRequest,
        mut obj: Value,
    ) -> Result<(u16, Arc<Value>), SimError> {
        let res = &req.res;
        let dry_run = req.dry_run()?;
        type_meta(res, &mut obj)?;
        if res.namespaced {
            let body_ns = meta_str(&obj, "namespace").to_string();
            if !body_ns.is_empty() && !req.namespace.is_empty() && body_ns != req.namespace {
                return Err(SimError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let ns = if req.namespace.is_empty() {
                body_ns
            } else {
                req.namespace.clone()
            };
            if ns.is_empty() {
                return Err(SimError::bad_request(
                    "an empty namespace may not be set during creation",
                ));
            }
            obj["metadata"]["namespace"] = Value::String(ns);
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        let namespace = meta_str(&obj, "namespace").to_string();
        let mut name = meta_str(&obj, "name").to_string();
        if name.is_empty() && !req.name.is_empty() {
            name = req.name.clone();
        }
        if name.is_empty() {
            let generate = meta_str(&obj, "generateName").to_string();
            if generate.is_empty() {
                return Err(SimError::invalid(
                    &res.group,
                    &res.kind,
                    "",
                    vec![cause(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    )],
                ));
            }
            name = format!("{generate}{}", random_suffix());
        }
        obj["metadata"]["name"] = Value::String(name.clone());
        let mut causes = name_causes(res, &name);
        causes.extend(label_causes(&obj));
        if !causes.is_empty() {
            return Err(SimError::invalid(&res.group, &res.kind, &name, causes));
        }
        if res.namespaced && !self.namespace_exists(&namespace) {
            return Err(SimError::not_found("", "namespaces", &namespace));
        }
        if res.has_status
            && let Some(m) = obj.as_object_mut()
        {
            // Status is set by controllers (the /status subresource), never by create.
            m.remove("status");
        }
        {
            let meta = obj["metadata"]
                .as_object_mut()
                .ok_or_else(|| SimError::bad_request("metadata: expected an object"))?;
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                meta.remove(f);
            }
            meta.insert(
                "uid".into(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
            meta.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
            if res.has_generation {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        drop_empty_metadata(&mut obj);
        self.prepare(req, &mut obj, None)?;
        record_manager(req, &mut obj);
        if self
            .store
            .get(&res.storage_key(), &namespace, &name)
            .is_some()
        {
            return Err(SimError::already_exists(&res.group, &res.plural, &name));
        }
        if dry_run {
            return Ok((201, obj.into()));
        }
        let stored = self.store.put(&res.storage_key(), obj);
        self.after_write(res, &stored);
        Ok((201, stored))
    }

    /// PUT: replace an object (or its status).
    pub fn update(&mut self, req: &ApiRequest) -> Result<(u16, Arc<Value>), SimError> {
        let obj = parse_body(&req.content_type, &req.body)?;
        let current = self.stored(req)?;
        self.update_object(req, obj, current, false)
    }

    /// PATCH (JSON, merge, strategic merge, server-side apply).
    pub fn patch(&mut self, req: &ApiRequest) -> Result<(u16, Arc<Value>), SimError> {
        let res = &req.res;
        let kind = PatchKind::from_content_type(&req.content_type).ok_or_else(|| {
            SimError::new(
                Reason::UnsupportedMediaType,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: {}",
                    PatchKind::CONTENT_TYPES.join(", ")
                ),
            )
        })?;
        if kind == PatchKind::Apply && req.query.get("fieldManager").is_none_or(String::is_empty) {
            return Err(SimError::new(
                Reason::Invalid,
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        let current = self
            .store
            .get_shared(&res.storage_key(), &req.namespace, &req.name)
            .cloned();
        let Some(current) = current else {
            if kind == PatchKind::Apply && !req.is_status() {
                let obj = parse_apply_body(&req.body)?;
                if meta_str(&obj, "name") != req.name {
                    return Err(SimError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({})",
                        meta_str(&obj, "name"),
                        req.name
                    )));
                }
                return self.create_object(req, obj);
            }
            return Err(SimError::not_found(&res.group, &res.plural, &req.name));
        };
        if kind == PatchKind::Strategic && res.custom {
            return Err(SimError::new(
                Reason::UnsupportedMediaType,
                format!(
                    "the body of the request was in an unknown format - accepted media types include: {}, {}, {}",
                    PatchKind::Json.content_type(),
                    PatchKind::Merge.content_type(),
                    PatchKind::Apply.content_type()
                ),
            ));
        }
        let current = served_as(current, res);
        let patched =
            patch::apply_patch(kind, &current, &req.body, &res.merge_keys()).map_err(|e| {
                let reason = match e.http_code() {
                    400 => Reason::BadRequest,
                    415 => Reason::UnsupportedMediaType,
                    _ => Reason::Invalid,
                };
                if reason == Reason::Invalid {
                    return SimError::invalid(
                        &res.group,
                        &res.kind,
                        &req.name,
                        vec![cause("FieldValueInvalid", "patch", e.message().to_string())],
                    );
                }
                SimError::new(reason, e.message().to_string())
            })?;
        self.update_object(req, patched, current, true)
    }

    /// Shared tail of PUT and PATCH.
    fn update_object(
        &mut self,
        req: &ApiRequest,
        mut obj: Value,
        current: Arc<Value>,
        from_patch: bool,
    ) -> Result<(u16, Arc<Value>), SimError> {
        let res = &req.res;
        let dry_run = req.dry_run()?;
        type_meta(res, &mut obj)?;
        let name = meta_str(&obj, "name").to_string();
        if name != req.name {
            return Err(SimError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                req.name
            )));
        }
        if res.namespaced {
            let ns = meta_str(&obj, "namespace");
            if !ns.is_empty() && ns != req.namespace {
                return Err(SimError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            obj["metadata"]["namespace"] = Value::String(req.namespace.clone());
        }
        let cur_rv = meta_str(&current, "resourceVersion").to_string();
        let body_rv = meta_str(&obj, "resourceVersion").to_string();
        if !body_rv.is_empty() && body_rv != cur_rv {
            return Err(SimError::conflict(&res.group, &res.plural, &name));
        }
        if body_rv.is_empty() && !from_patch && res.custom {
            return Err(SimError::invalid(
                &res.group,
                &res.kind,
                &name,
                vec![cause(
                    "FieldValueInvalid",
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                )],
            ));
        }
        if req.is_status() {
            let mut merged = Value::clone(&current);
            merged["status"] = obj.get("status").cloned().unwrap_or(Value::Null);
            if merged["status"].is_null()
                && let Some(m) = merged.as_object_mut()
            {
                m.remove("status");
            }
            obj = merged;
        } else if res.has_status {
            match current.get("status") {
                Some(s) => obj["status"] = s.clone(),
                None => {
                    if let Some(m) = obj.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        // Fields the server owns.
        for f in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match current["metadata"].get(f) {
                Some(v) => obj["metadata"][f] = v.clone(),
                None => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove(f);
                    }
                }
            }
        }
        let causes = label_causes(&obj);
        if !causes.is_empty() {
            return Err(SimError::invalid(&res.group, &res.kind, &name, causes));
        }
        drop_empty_metadata(&mut obj);
        self.prepare(req, &mut obj, Some(&current))?;
        record_manager(req, &mut obj);
        if res.has_generation && !same_spec(&obj, &current, res.has_status) {
            let g = current["metadata"]["generation"].as_i64().unwrap_or(0);
            obj["metadata"]["generation"] = json!(g + 1);
        }
        if same_but_api_version(&obj, &current) {
            // No-op writes change nothing, not even the resourceVersion.
            return Ok((200, current));
        }
        let deleting = !current["metadata"]["deletionTimestamp"].is_null();
        let finalizers_empty = obj["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if dry_run {
            return Ok((200, obj.into()));
        }
        if deleting && finalizers_empty {
            let ns = req.namespace.clone();
            self.store.put(&res.storage_key(), obj);
            let removed = self.remove_with_dependents(res, &ns, &name, false);
            return Ok((200, removed.unwrap_or(Value::Null).into()));
        }
        let stored = self.store.put(&res.storage_key(), obj);
        self.after_write(res, &stored);
        Ok((200, stored))
    }

    /// GET, PUT or PATCH of a deployment's `/scale` subresource (an `autoscaling/v1` Scale).
    pub fn scale(&mut self, req: &ApiRequest, verb: &str) -> Result<(u16, Arc<Value>), SimError> {
        let res = &req.res;
        let current = self.stored(req)?;
        let to_scale = |d: &Value| {
            let labels = d["spec"]["selector"]["matchLabels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            json!({
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    "name": d["metadata"]["name"], "namespace": d["metadata"]["namespace"],
                    "uid": d["metadata"]["uid"], "resourceVersion": d["metadata"]["resourceVersion"],
                    "creationTimestamp": d["metadata"]["creationTimestamp"],
                },
                "spec": {"replicas": d["spec"]["replicas"]},
                "status": {"replicas": d["status"]["replicas"], "selector": labels},
            })
        };
        let scale = to_scale(&current);
        let wanted = match verb {
            "get" => return Ok((200, scale.into())),
            "update" => parse_body(&req.content_type, &req.body)?,
            "patch" => {
                let kind = PatchKind::from_content_type(&req.content_type).ok_or_else(|| {
                    SimError::new(Reason::UnsupportedMediaType, "unsupported patch type")
                })?;
                patch::apply_patch(kind, &scale, &req.body, &patch::MergeKeys::none())
                    .map_err(|e| SimError::bad_request(e.message().to_string()))?
            }
            _ => {
                return Err(SimError::new(
                    Reason::MethodNotAllowed,
                    "the server does not allow this method on the requested resource",
                ));
            }
        };
        let rv = meta_str(&wanted, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&current, "resourceVersion") {
            return Err(SimError::conflict(&res.group, &res.plural, &req.name));
        }
        let Some(replicas) = wanted["spec"]["replicas"].as_i64().filter(|r| *r >= 0) else {
            return Err(SimError::invalid(
                "autoscaling",
                "Scale",
                &req.name,
                vec![cause(
                    "FieldValueInvalid",
                    "spec.replicas",
                    "Invalid value: must be greater than or equal to 0",
                )],
            ));
        };
        let mut updated = Value::clone(&current);
        updated["spec"]["replicas"] = json!(replicas);
        let inner = ApiRequest {
            subresource: None,
            ..req.clone()
        };
        let (code, obj) = self.update_object(&inner, updated, current, true)?;
        Ok((code, Arc::new(to_scale(&obj))))
    }

    /// DELETE one object. Like kube-apiserver, the answer for an object deleted at once is
    /// a `Status` (Success, with the object's name, group, resource and uid), except for the
    /// kinds whose storage returns the deleted object (pods, services, service accounts,
    /// namespaces, CRDs); an object kept for its finalizers is returned as it is now.
    pub fn delete(&mut self, req: &ApiRequest) -> Result<(u16, Arc<Value>), SimError> {
        let (code, obj, gone) = self.delete_object(req)?;
        let res = &req.res;
        let returns_object = (res.group.is_empty()
            && matches!(
                res.plural.as_str(),
                "pods" | "services" | "serviceaccounts" | "namespaces"
            ))
            || (res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions");
        if !gone || returns_object {
            return Ok((code, obj));
        }
        let mut details = json!({"name": meta_str(&obj, "name")});
        if !res.group.is_empty() {
            details["group"] = json!(res.group);
        }
        details["kind"] = json!(res.plural);
        details["uid"] = json!(meta_str(&obj, "uid"));
        Ok((
            code,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details})
            .into(),
        ))
    }

    /// DELETE one object: (code, object, whether it is gone rather than kept for its
    /// finalizers).
    fn delete_object(&mut self, req: &ApiRequest) -> Result<(u16, Arc<Value>, bool), SimError> {
        let res = &req.res;
        let dry_run = req.dry_run()?;
        let opts: Value = if req.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&req.body)
                .or_else(|_| serde_yaml::from_slice(&req.body))
                .map_err(|e| SimError::bad_request(format!("error decoding DeleteOptions: {e}")))?
        };
        let body_dry_run = opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
        let orphan = opts["propagationPolicy"] == "Orphan"
            || req
                .query
                .get("propagationPolicy")
                .is_some_and(|p| p == "Orphan")
            || opts["orphanDependents"] == true;
        let current = self.stored(req)?;
        let pre = &opts["preconditions"];
        for (field, shown) in [("resourceVersion", "ResourceVersion"), ("uid", "UID")] {
            if let Some(wanted) = pre[field].as_str()
                && wanted != meta_str(&current, field)
            {
                return Err(SimError::new(
                    Reason::Conflict,
                    format!(
                        "Operation cannot be fulfilled on {} \"{}\": Precondition failed: {shown} in precondition: {wanted}, {shown} in object meta: {}",
                        crate::error::qualified(&res.group, &res.plural),
                        req.name,
                        meta_str(&current, field)
                    ),
                )
                .with_details(&req.name, &res.group, &res.plural));
            }
        }
        let has_finalizers = current["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if dry_run || body_dry_run {
            return Ok((200, current, !has_finalizers));
        }
        if has_finalizers {
            if !current["metadata"]["deletionTimestamp"].is_null() {
                return Ok((200, current, false));
            }
            let mut obj = Arc::unwrap_or_clone(current);
            obj["metadata"]["deletionTimestamp"] = Value::String(now_rfc3339());
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let stored = self.store.put(&res.storage_key(), obj);
            return Ok((200, stored, false));
        }
        let removed = self
            .remove_with_dependents(res, &req.namespace, &req.name, orphan)
            .ok_or_else(|| SimError::not_found(&res.group, &res.plural, &req.name))?;
        Ok((200, removed.into(), true))
    }

    /// DELETE a collection (with selectors).
    pub fn delete_collection(&mut self, req: &ApiRequest) -> Result<(u16, Arc<Value>), SimError> {
        let list = self.list(&ApiRequest {
            query: req
                .query
                .iter()
                .filter(|(k, _)| *k != "limit" && *k != "continue")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..req.clone()
        })?;
        let mut deleted = Vec::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let one = ApiRequest {
                namespace: meta_str(&item, "namespace").to_string(),
                name: meta_str(&item, "name").to_string(),
                body: bytes::Bytes::new(),
                ..req.clone()
            };
            if let Ok((_, obj, _)) = self.delete_object(&one) {
                deleted.push(Arc::unwrap_or_clone(obj));
            }
        }
        let mut out = list;
        out["items"] = Value::Array(deleted);
        out["metadata"]["resourceVersion"] = Value::String(self.store.rv().to_string());
        Ok((200, out.into()))
    }

    /// Remove an object, then (unless orphaning) the objects it owns; a namespace takes its
    /// contents with it and a CRD its custom resources.
    pub fn remove_with_dependents(
        &mut self,
        res: &ResourceInfo,
        namespace: &str,
        name: &str,
        orphan: bool,
    ) -> Option<Value> {
        let removed = self.store.remove(&res.storage_key(), namespace, name)?;
        if res.group.is_empty() && res.plural == "namespaces" {
            for storage in self.store.storages() {
                let names: Vec<String> = self
                    .store
                    .list(&storage, Some(name))
                    .map(|o| meta_str(o, "name").to_string())
                    .collect();
                for n in names {
                    self.store.remove(&storage, name, &n);
                }
            }
        }
        if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
            self.unregister_crd(&removed);
        }
        if !orphan && res.namespaced {
            let uid = meta_str(&removed, "uid").to_string();
            let mut dependents = Vec::new();
            for storage in self.store.storages() {
                for o in self.store.list(&storage, Some(namespace)) {
                    let owned = o["metadata"]["ownerReferences"]
                        .as_array()
                        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()));
                    if owned {
                        dependents.push((storage.clone(), meta_str(o, "name").to_string()));
                    }
                }
            }
            for (storage, n) in dependents {
                if let Some(dep_res) = self
                    .resources
                    .iter()
                    .find(|r| r.storage_key() == storage)
                    .cloned()
                {
                    let has_finalizers = self
                        .store
                        .get(&storage, namespace, &n)
                        .and_then(|o| o["metadata"]["finalizers"].as_array())
                        .is_some_and(|f| !f.is_empty());
                    if has_finalizers {
                        if let Some(mut o) = self.store.get(&storage, namespace, &n).cloned()
                            && o["metadata"]["deletionTimestamp"].is_null()
                        {
                            o["metadata"]["deletionTimestamp"] = Value::String(now_rfc3339());
                            self.store.put(&storage, o);
                        }
                    } else {
                        self.remove_with_dependents(&dep_res, namespace, &n, false);
                    }
                }
            }
        }
        Some(removed)
    }

    /// Resource-specific defaulting and validation before a write.
    fn prepare(
        &mut self,
        req: &ApiRequest,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), SimError> {
        let res = &req.res;
        let name = meta_str(obj, "name").to_string();
        let invalid = |causes: Vec<Cause>| SimError::invalid(&res.group, &res.kind, &name, causes);
        let validation = req
            .query
            .get("fieldValidation")
            .map_or("Warn", String::as_str);
        let mut unknown = Vec::new();
        // Unknown fields are reported for spec writes only; status writes are pruned silently.
        let report = validation != "Ignore" && !req.is_status();
        if res.custom {
            if let Some(schema) = &res.schema {
                if report {
                    schema.prune_reporting(obj, &mut unknown);
                } else {
                    schema.prune(obj);
                }
            }
        } else if let Some(node) = crate::builtin_schema::schema(&res.group, &res.plural) {
            crate::builtin_schema::prune(node, obj, "", &mut unknown);
        }
        if report && !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            if validation == "Strict" {
                return Err(SimError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                    list.join(", "),
                    kind = res.kind,
                    version = res.version,
                )));
            }
            self.warnings.extend(list);
        }
        if res.custom {
            if let Some(schema) = &res.schema {
                schema.apply_defaults(obj);
                let mut errors = schema.validate(obj);
                if errors.is_empty() {
                    errors = schema.validate_rules(obj, old);
                }
                if !errors.is_empty() {
                    return Err(invalid(
                        errors
                            .into_iter()
                            .map(|e| Cause {
                                reason: e.reason,
                                message: e.message,
                                field: e.field,
                            })
                            .collect(),
                    ));
                }
            }
            return Ok(());
        }
        let write = kinds::Write {
            res,
            name: &name,
            old,
            status: req.is_status(),
        };
        kinds::prepare(&write, obj)
    }

    /// Register what a CRD serves after it was written.
    fn after_write(&mut self, res: &ResourceInfo, obj: &Value) {
        if res.group == "apiextensions.k8s.io"
            && res.plural == "customresourcedefinitions"
            && let Ok(infos) = registry::from_crd(obj)
        {
            let group = obj["spec"]["group"].as_str().unwrap_or_default();
            let plural = obj["spec"]["names"]["plural"].as_str().unwrap_or_default();
            let served_before = self
                .resources
                .iter()
                .any(|r| r.custom && r.group == group && r.plural == plural);
            if !served_before {
                // kube-apiserver's watch cache of a new resource starts now: a watch from an
                // older version is answered with 410 Expired.
                self.store.start_history(&format!("{group}/{plural}"));
            }
            self.resources
                .retain(|r| !(r.custom && r.group == group && r.plural == plural));
            self.resources.extend(infos);
        }
    }

    fn unregister_crd(&mut self, crd: &Value) {
        let group = crd["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let plural = crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.resources
            .retain(|r| !(r.custom && r.group == group && r.plural == plural));
        self.store.remove_all(&format!("{group}/{plural}"));
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// Record the request's `fieldManager` in `metadata.managedFields` (one entry per manager,
/// operation and subresource; field sets are not tracked).
fn record_manager(req: &ApiRequest, obj: &mut Value) {
    let Some(manager) = req.query.get("fieldManager").filter(|m| !m.is_empty()) else {
        return;
    };
    let operation = if PatchKind::from_content_type(&req.content_type) == Some(PatchKind::Apply) {
        "Apply"
    } else {
        "Update"
    };
    let subresource = req.subresource.clone().unwrap_or_default();
    let entries = &mut obj["metadata"]["managedFields"];
    if !entries.is_array() {
        *entries = json!([]);
    }
    let Some(list) = entries.as_array_mut() else {
        return;
    };
    let known = list.iter().any(|e| {
        e["manager"] == manager.as_str()
            && e["operation"] == operation
            && e["subresource"].as_str().unwrap_or_default() == subresource
    });
    if !known {
        let mut e = json!({
            "manager": manager,
            "operation": operation,
            "apiVersion": req.res.api_version(),
            "time": now_rfc3339(),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        });
        if !subresource.is_empty() {
            e["subresource"] = json!(subresource);
        }
        list.push(e);
    }
}

/// Empty labels, annotations, finalizers and owner references are not stored (they are
/// `omitempty` in kube-apiserver's ObjectMeta): a merge patch that removes the last label
/// leaves no `labels` map.
fn drop_empty_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match meta.get(f) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(f);
            }
        }
    }
}

/// Parse a server-side apply body (YAML or JSON).
fn parse_apply_body(body: &[u8]) -> Result<Value, SimError> {
    let v: Value = serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|e| SimError::bad_request(format!("error decoding YAML: {e}")))?;
    if !v.is_object() {
        return Err(SimError::bad_request("the apply body is not an object"));
    }
    Ok(v)
}

/// `group/version` → (group, version); `v1` → ("", "v1").
pub fn split_api_version(av: &str) -> (&str, &str) {
    match av.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", av),
    }
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}")}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(u64, String, String), SimError> {
    let bad = || SimError::bad_request("continue key is not valid: invalid continue token");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    let (ns, name) = start.split_once('/').ok_or_else(bad)?;
    Ok((rv, ns.to_string(), name.to_string()))
}

/// Shared, locked state.
pub type SharedState = Arc<std::sync::Mutex<State>>;
