//! Pruning: drop every field the schema does not specify.

use serde_json::Value;

use super::{Additional, Node};

/// Fields of a Kubernetes object kept at the root and in embedded resources.
const OBJECT_META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Prune `value` in place. `keep_object_meta` is true at the root and for embedded
/// resources: their apiVersion/kind/metadata are never dropped (the API server handles
/// metadata itself). Each removed field's path (`spec.foo`, `spec.items[0].bar`) is added
/// to `removed` when it is `Some`; `path` is the path of `value` (a buffer reused down the
/// tree, so walking a large object allocates nothing when nothing is removed).
pub(super) fn prune(
    node: &Node,
    value: &mut Value,
    keep_object_meta: bool,
    path: &mut String,
    removed: &mut Option<&mut Vec<String>>,
) {
    match value {
        Value::Object(map) => {
            let keep_meta = keep_object_meta || node.embedded_resource;
            // One pass in the object's order: children are pruned, unknown keys dropped.
            map.retain(|key, v| {
                let child = if keep_meta && OBJECT_META_FIELDS.contains(&key.as_str()) {
                    // Specified metadata of an embedded resource is pruned by its schema,
                    // but never removed.
                    match node.property(key) {
                        Some(child) if key != "metadata" => Some(child),
                        _ => return true,
                    }
                } else if let Some(child) = node.property(key) {
                    Some(child)
                } else {
                    match &node.additional {
                        Additional::Schema(child) => Some(child.as_ref()),
                        Additional::Any => return true,
                        Additional::None if node.preserve_unknown => return true,
                        Additional::None => None,
                    }
                };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let keep = match child {
                    Some(child) => {
                        prune(child, v, false, path, removed);
                        true
                    }
                    None => {
                        if let Some(out) = removed.as_deref_mut() {
                            out.push(path.clone());
                        }
                        false
                    }
                };
                path.truncate(len);
                keep
            });
        }
        Value::Array(items) => {
            if let Some(child) = &node.items {
                for (i, v) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                    prune(child, v, false, path, removed);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}
