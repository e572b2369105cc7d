//! Building the request for a patch step. Every patch built here is idempotent: applying it
//! twice gives the same object as applying it once, so a step replayed after a crash cannot
//! do harm.
//!
//! - **JSON Patch** (RFC 6902): a path ending in an object key becomes `add` (which sets or
//!   replaces the member); a path ending in a list element becomes `replace` (never `add` at
//!   an index, which would insert a second element on replay). Filters are resolved against
//!   the current object to an index and guarded by a `test` op on the element's filter key,
//!   so a list that shifted since the read makes the patch fail instead of hitting the wrong
//!   element. With the current object, missing parent objects are created.
//! - **JSON merge patch** (RFC 7386): a path of object keys becomes a nested object. A merge
//!   patch cannot address a list element, so a path through a list is done as
//!   read-modify-write: the current object is modified with [`FieldPath::set`] and the whole
//!   top-level list is sent, with `resource_version` set so the caller sends it as a
//!   precondition (a concurrent change makes the server answer 409 instead of losing it).
//!   With the current object, an object value replaces the field exactly (members that the
//!   value lacks are deleted with `null`); without it, RFC 7386 merges the object into the
//!   existing one. `null` cannot be set through a merge patch (it means "delete").
//! - **Strategic merge patch**: built-in kinds only (custom resources get 415 from a real
//!   API server). Lists with a known merge key (containers by name, env by name, ports by
//!   containerPort, volumes by name, volumeMounts by mountPath, conditions by type,
//!   imagePullSecrets by name…) are addressed as `[{<mergeKey>: v, field: value}]`, index
//!   segments resolved through the current object. Anything strategic merge cannot express
//!   exactly (unknown lists, replacing a whole element, changing the merge key, a value
//!   that contains lists) falls back to the read-modify-write merge patch above, returned
//!   with `patch_type` = merge patch: the caller must send the `patch_type` of the
//!   [`BuiltPatch`], not the one it asked for.

use serde_json::{Map, Value, json};

use crate::fieldpath::{FieldPath, FieldPathError, Segment, escape_pointer};

pub use lifeboat_api::PatchType;

/// The request to send for a patch step.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltPatch {
    /// The patch type to send (`Content-Type`); may differ from the one asked for, see the
    /// module documentation.
    pub patch_type: PatchType,
    /// The patch document.
    pub body: Value,
    /// When set, the patch is a read-modify-write and must be sent with this
    /// `metadata.resourceVersion` as a precondition.
    pub resource_version: Option<String>,
}

/// Why a patch could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// Strategic merge patch requested for a custom resource.
    #[error(
        "strategic merge patch is only supported for built-in kinds, not {api_version}; use application/merge-patch+json or application/json-patch+json"
    )]
    StrategicMergeOnCustomResource { api_version: String },
    /// The patch needs the current object but none was given.
    #[error("patching {path} with {patch_type} needs the current object: {reason}")]
    NeedsCurrentObject {
        path: String,
        patch_type: &'static str,
        reason: &'static str,
    },
    /// A merge-style patch cannot carry `null` (it deletes the field).
    #[error(
        "cannot set {path} to a value containing null with {patch_type}: null deletes fields in a merge patch; use application/json-patch+json"
    )]
    NullInMergePatch {
        path: String,
        patch_type: &'static str,
    },
    /// The path is empty or starts with a list index.
    #[error("cannot patch through path {path:?}: it must start with an object key")]
    BadPath { path: String },
    /// The path does not resolve in the current object.
    #[error(transparent)]
    FieldPath(#[from] FieldPathError),
}

/// Whether building this patch needs the current object (GET before PATCH).
pub fn needs_current_object(patch_type: PatchType, path: &FieldPath) -> bool {
    match patch_type {
        PatchType::JsonPatch => path.has_filter(),
        PatchType::MergePatch | PatchType::StrategicMergePatch => path.has_array_segment(),
    }
}

/// API groups served by kube-apiserver itself (strategic merge patch works only for these).
const BUILTIN_GROUPS: &[&str] = &[
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
];

/// Whether `api_version` (`v1`, `apps/v1`, `batch/v1`…) belongs to a built-in kind.
pub fn is_builtin_api_version(api_version: &str) -> bool {
    let api_version = api_version.trim();
    match api_version.split_once('/') {
        None => api_version == "v1",
        Some((group, version)) => {
            !version.is_empty() && !version.contains('/') && BUILTIN_GROUPS.contains(&group)
        }
    }
}

/// Merge key of the lists strategic merge patch knows, by list field name.
pub fn merge_key_for(list_field: &str) -> Option<&'static str> {
    Some(match list_field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "hostAliases" => "ip",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "readinessGates" => "conditionType",
        _ => return None,
    })
}

/// Build the patch that sets `path` to `value`.
///
/// `current` is the object as last read (needed when [`needs_current_object`] says so;
/// used when given to resolve and check the path). `api_version` is the target's.
pub fn build_patch(
    patch_type: PatchType,
    path: &FieldPath,
    value: Value,
    current: Option<&Value>,
    api_version: &str,
) -> Result<BuiltPatch, PatchError> {
    if !matches!(path.segments().first(), Some(Segment::Key(_))) {
        return Err(PatchError::BadPath {
            path: path.to_string(),
        });
    }
    if let Some(cur) = current {
        // Same rules as FieldPath::set: a missing index or an unmatched filter is an error
        // here, not a wrong patch on the server.
        let mut scratch = cur.clone();
        path.set(&mut scratch, value.clone())?;
    } else if needs_current_object(patch_type, path) {
        return Err(PatchError::NeedsCurrentObject {
            path: path.to_string(),
            patch_type: patch_type.content_type(),
            reason: match patch_type {
                PatchType::JsonPatch => {
                    "a filter is resolved to a list index in the current object"
                }
                _ => "a list element is patched by read-modify-write of the whole list",
            },
        });
    }
    match patch_type {
        PatchType::JsonPatch => json_patch(path, value, current),
        PatchType::MergePatch => merge_patch(path, value, current),
        PatchType::StrategicMergePatch => {
            if !is_builtin_api_version(api_version) {
                return Err(PatchError::StrategicMergeOnCustomResource {
                    api_version: api_version.to_string(),
                });
            }
            strategic_merge_patch(path, value, current)
        }
    }
}

fn pointer_of(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        out.push('/');
        match s {
            Segment::Key(k) => out.push_str(&escape_pointer(k)),
            Segment::Index(n) => out.push_str(&n.to_string()),
            // Callers resolve filters before building pointers.
            Segment::Filter { .. } => out.push('-'),
        }
    }
    out
}

fn json_patch(
    path: &FieldPath,
    value: Value,
    current: Option<&Value>,
) -> Result<BuiltPatch, PatchError> {
    let segs = path.segments();
    // Resolve every segment to a concrete pointer segment, collecting test ops for filters.
    let mut resolved: Vec<Segment> = Vec::with_capacity(segs.len());
    let mut tests = Vec::new();
    let mut cur = current;
    let mut missing_from: Option<usize> = None;
    for (i, seg) in segs.iter().enumerate() {
        match seg {
            Segment::Key(k) => {
                resolved.push(seg.clone());
                let next = cur.and_then(|c| c.get(k.as_str())).filter(|v| !v.is_null());
                if current.is_some()
                    && next.is_none()
                    && missing_from.is_none()
                    && i + 1 < segs.len()
                {
                    missing_from = Some(i);
                }
                cur = next;
            }
            Segment::Index(n) => {
                resolved.push(seg.clone());
                cur = cur.and_then(|c| c.get(*n));
            }
            Segment::Filter { key, .. } => {
                let Some(list) = cur else {
                    return Err(PatchError::FieldPath(FieldPathError::NotFound {
                        path: path.to_string(),
                        missing: path.prefix_string(i),
                    }));
                };
                let idx = path.resolve_filter(list, seg, i)?;
                resolved.push(Segment::Index(idx));
                let elem = list.get(idx);
                if let Some(kv) = elem.and_then(|e| e.get(key.as_str())) {
                    let mut p = resolved.clone();
                    p.push(Segment::Key(key.clone()));
                    tests.push(json!({"op": "test", "path": pointer_of(&p), "value": kv}));
                }
                cur = elem;
            }
        }
    }
    let mut ops = tests;
    match segs.last() {
        Some(Segment::Key(_)) => {
            if let Some(j) = missing_from {
                // Create the missing parents in one `add` of the nested value.
                let mut nested = value;
                for s in segs[j + 1..].iter().rev() {
                    let Segment::Key(k) = s else {
                        return Err(PatchError::BadPath {
                            path: path.to_string(),
                        });
                    };
                    let mut m = Map::new();
                    m.insert(k.clone(), nested);
                    nested = Value::Object(m);
                }
                ops.push(
                    json!({"op": "add", "path": pointer_of(&resolved[..=j]), "value": nested}),
                );
            } else {
                ops.push(json!({"op": "add", "path": pointer_of(&resolved), "value": value}));
            }
        }
        _ => ops.push(json!({"op": "replace", "path": pointer_of(&resolved), "value": value})),
    }
    Ok(BuiltPatch {
        patch_type: PatchType::JsonPatch,
        body: Value::Array(ops),
        resource_version: None,
    })
}

/// Whether a value holds `null` where a merge patch would read it as "delete" (as the value
/// itself or as an object member outside lists).
fn has_merge_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().any(has_merge_null),
        _ => false,
    }
}

fn contains_list(v: &Value) -> bool {
    match v {
        Value::Array(_) => true,
        Value::Object(m) => m.values().any(contains_list),
        _ => false,
    }
}

/// The merge patch turning `old` into `new` (both objects): changed members, and `null` for
/// members `new` lacks.
fn merge_diff(old: &Map<String, Value>, new: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (k, nv) in new {
        match (old.get(k), nv) {
            (Some(ov), nv) if ov == nv => {}
            (Some(Value::Object(om)), Value::Object(nm)) => {
                out.insert(k.clone(), merge_diff(om, nm));
            }
            _ => {
                out.insert(k.clone(), nv.clone());
            }
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

/// The leaf of a merge-style patch: the value, or with the current object, the exact diff
/// when both are objects.
fn leaf(value: Value, old: Option<&Value>) -> Value {
    match (old, &value) {
        (Some(Value::Object(om)), Value::Object(nm)) => merge_diff(om, nm),
        _ => value,
    }
}

fn nest(keys: &[Segment], inner: Value) -> Value {
    let mut v = inner;
    for s in keys.iter().rev() {
        if let Segment::Key(k) = s {
            let mut m = Map::new();
            m.insert(k.clone(), v);
            v = Value::Object(m);
        }
    }
    v
}

fn merge_patch(
    path: &FieldPath,
    value: Value,
    current: Option<&Value>,
) -> Result<BuiltPatch, PatchError> {
    if has_merge_null(&value) {
        return Err(PatchError::NullInMergePatch {
            path: path.to_string(),
            patch_type: PatchType::MergePatch.content_type(),
        });
    }
    if path.has_array_segment() {
        return read_modify_write(path, value, current);
    }
    let old = current.and_then(|c| path.get(c).ok());
    Ok(BuiltPatch {
        patch_type: PatchType::MergePatch,
        body: nest(path.segments(), leaf(value, old)),
        resource_version: None,
    })
}

/// Set the field on a copy of the current object and send the whole first list on the path
/// as a merge patch, with the resourceVersion precondition.
fn read_modify_write(
    path: &FieldPath,
    value: Value,
    current: Option<&Value>,
) -> Result<BuiltPatch, PatchError> {
    let Some(cur) = current else {
        return Err(PatchError::NeedsCurrentObject {
            path: path.to_string(),
            patch_type: PatchType::MergePatch.content_type(),
            reason: "a list element is patched by read-modify-write of the whole list",
        });
    };
    let segs = path.segments();
    let first_list = segs
        .iter()
        .position(|s| !matches!(s, Segment::Key(_)))
        .unwrap_or(segs.len());
    if first_list == 0 {
        return Err(PatchError::BadPath {
            path: path.to_string(),
        });
    }
    let mut modified = cur.clone();
    path.set(&mut modified, value)?;
    let list_path = FieldPath::from_segments(segs[..first_list].to_vec());
    let list = list_path.get(&modified)?.clone();
    let resource_version = cur
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(BuiltPatch {
        patch_type: PatchType::MergePatch,
        body: nest(&segs[..first_list], list),
        resource_version,
    })
}

fn strategic_merge_patch(
    path: &FieldPath,
    value: Value,
    current: Option<&Value>,
) -> Result<BuiltPatch, PatchError> {
    if has_merge_null(&value) {
        return Err(PatchError::NullInMergePatch {
            path: path.to_string(),
            patch_type: PatchType::StrategicMergePatch.content_type(),
        });
    }
    if contains_list(&value) {
        // Strategic merge would merge lists inside the value by key instead of setting them.
        if path.has_array_segment() {
            return read_modify_write(path, value, current);
        }
        let old = current.and_then(|c| path.get(c).ok());
        return Ok(BuiltPatch {
            patch_type: PatchType::MergePatch,
            body: nest(path.segments(), leaf(value, old)),
            resource_version: None,
        });
    }
    match smp_body(path, path.segments(), 0, current, &value) {
        Some(body) => Ok(BuiltPatch {
            patch_type: PatchType::StrategicMergePatch,
            body,
            resource_version: None,
        }),
        None => read_modify_write(path, value, current),
    }
}

/// The strategic merge patch body for `segs` (starting at segment `at` of `path`) against
/// `cur`, or `None` when strategic merge cannot express it exactly.
fn smp_body(
    path: &FieldPath,
    segs: &[Segment],
    at: usize,
    cur: Option<&Value>,
    value: &Value,
) -> Option<Value> {
    let Some(first) = segs.first() else {
        return Some(leaf(value.clone(), cur));
    };
    let Segment::Key(k) = first else {
        return None;
    };
    let next_cur = cur.and_then(|c| c.get(k.as_str()));
    let inner = match segs.get(1) {
        Some(list_seg @ (Segment::Index(_) | Segment::Filter { .. })) => {
            let mk = merge_key_for(k)?;
            let list = next_cur?;
            let idx = path.resolve_filter(list, list_seg, at + 1).ok()?;
            let elem = list.get(idx)?;
            let mk_value = elem.get(mk)?.clone();
            let rest = &segs[2..];
            match rest.first() {
                None => return None,
                Some(Segment::Key(r)) if r == mk => return None,
                _ => {}
            }
            let Value::Object(inner) = smp_body(path, rest, at + 2, Some(elem), value)? else {
                return None;
            };
            let mut obj = Map::new();
            obj.insert(mk.to_string(), mk_value);
            obj.extend(inner);
            Value::Array(vec![Value::Object(obj)])
        }
        _ => smp_body(path, &segs[1..], at + 1, next_cur, value)?,
    };
    let mut m = Map::new();
    m.insert(k.clone(), inner);
    Some(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap()
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "my-pod", "resourceVersion": "42"},
            "spec": {"containers": [
                {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
                {"name": "app", "image": "y"}
            ]}
        })
    }

    #[test]
    fn json_patch_uses_replace_for_indexes_and_add_for_keys() {
        let b = build_patch(
            PatchType::JsonPatch,
            &p("spec.containers[1].image"),
            json!("z"),
            None,
            "v1",
        )
        .unwrap();
        assert_eq!(
            b.body,
            json!([{"op": "add", "path": "/spec/containers/1/image", "value": "z"}])
        );
        let b = build_patch(
            PatchType::JsonPatch,
            &p("spec.containers[1]"),
            json!({"name": "b"}),
            Some(&pod()),
            "v1",
        )
        .unwrap();
        assert_eq!(
            b.body,
            json!([{"op": "replace", "path": "/spec/containers/1", "value": {"name": "b"}}])
        );
    }

    #[test]
    fn json_patch_filter_is_resolved_and_guarded() {
        let b = build_patch(
            PatchType::JsonPatch,
            &p("spec.containers[?(@.name==\"app\")].image"),
            json!("z"),
            Some(&pod()),
            "v1",
        )
        .unwrap();
        assert_eq!(
            b.body,
            json!([
                {"op": "test", "path": "/spec/containers/1/name", "value": "app"},
                {"op": "add", "path": "/spec/containers/1/image", "value": "z"}
            ])
        );
        let e = build_patch(
            PatchType::JsonPatch,
            &p("spec.containers[?(@.name==\"app\")].image"),
            json!("z"),
            None,
            "v1",
        )
        .unwrap_err();
        assert!(matches!(e, PatchError::NeedsCurrentObject { .. }), "{e}");
    }

    #[test]
    fn json_patch_creates_missing_parents_when_current_known() {
        let b = build_patch(
            PatchType::JsonPatch,
            &p("metadata.annotations.owner"),
            json!("me"),
            Some(&pod()),
            "v1",
        )
        .unwrap();
        assert_eq!(
            b.body,
            json!([{"op": "add", "path": "/metadata/annotations", "value": {"owner": "me"}}])
        );
    }

    #[test]
    fn merge_patch_through_list_is_read_modify_write() {
        let b = build_patch(
            PatchType::MergePatch,
            &p("spec.containers[1].image"),
            json!("z"),
            Some(&pod()),
            "v1",
        )
        .unwrap();
        assert_eq!(b.patch_type, PatchType::MergePatch);
        assert_eq!(b.resource_version.as_deref(), Some("42"));
        assert_eq!(b.body["spec"]["containers"][1]["image"], json!("z"));
        assert_eq!(b.body["spec"]["containers"][0]["image"], json!("x"));
        let e = build_patch(
            PatchType::MergePatch,
            &p("spec.containers[1].image"),
            json!("z"),
            None,
            "v1",
        )
        .unwrap_err();
        assert!(matches!(e, PatchError::NeedsCurrentObject { .. }), "{e}");
    }

    #[test]
    fn merge_patch_on_custom_resource_and_null() {
        let b = build_patch(
            PatchType::MergePatch,
            &p("spec.standby.enabled"),
            json!(false),
            None,
            "pgv2.percona.com/v2",
        )
        .unwrap();
        assert_eq!(b.body, json!({"spec": {"standby": {"enabled": false}}}));
        let e =
            build_patch(PatchType::MergePatch, &p("spec.x"), Value::Null, None, "v1").unwrap_err();
        assert!(e.to_string().contains("null deletes"), "{e}");
    }

    #[test]
    fn strategic_merge_patch_uses_merge_keys() {
        let b = build_patch(
            PatchType::StrategicMergePatch,
            &p("spec.containers[1].image"),
            json!("z"),
            Some(&pod()),
            "v1",
        )
        .unwrap();
        assert_eq!(b.patch_type, PatchType::StrategicMergePatch);
        assert_eq!(
            b.body,
            json!({"spec": {"containers": [{"name": "app", "image": "z"}]}})
        );
        let b = build_patch(
            PatchType::StrategicMergePatch,
            &p("spec.containers[?(@.name=='a')].env[0].value"),
            json!("2"),
            Some(&pod()),
            "v1",
        )
        .unwrap();
        assert_eq!(
            b.body,
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "A", "value": "2"}]}]}})
        );
        // Changing the merge key itself falls back to read-modify-write.
        let b = build_patch(
            PatchType::StrategicMergePatch,
            &p("spec.containers[1].name"),
            json!("web"),
            Some(&pod()),
            "v1",
        )
        .unwrap();
        assert_eq!(b.patch_type, PatchType::MergePatch);
        assert_eq!(b.resource_version.as_deref(), Some("42"));
        let e = build_patch(
            PatchType::StrategicMergePatch,
            &p("spec.x"),
            json!(1),
            None,
            "example.com/v1",
        )
        .unwrap_err();
        assert!(
            matches!(e, PatchError::StrategicMergeOnCustomResource { .. }),
            "{e}"
        );
    }

    #[test]
    fn builtin_api_versions() {
        for v in [
            "v1",
            "apps/v1",
            "batch/v1",
            "networking.k8s.io/v1",
            "autoscaling/v2",
            "policy/v1",
        ] {
            assert!(is_builtin_api_version(v), "{v}");
        }
        for v in [
            "recovery.elotl.co/v1alpha1",
            "pgv2.percona.com/v2",
            "v2",
            "",
            "apps",
            "apps/",
        ] {
            assert!(!is_builtin_api_version(v), "{v}");
        }
    }
}
