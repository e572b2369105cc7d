//! Pruning: drop every field the schema does not specify.

use serde_json::Value;

use super::{Additional, Node};

/// Fields of a Kubernetes object kept at the root and in embedded resources.
const OBJECT_META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Prune `value` in place. `keep_object_meta` is true at the root and for embedded
/// resources: their apiVersion/kind/metadata are never dropped (the API server handles
/// metadata itself).
pub(super) fn prune(node: &Node, value: &mut Value, keep_object_meta: bool) {
    match value {
        Value::Object(map) => {
            let keep_meta = keep_object_meta || node.embedded_resource;
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if keep_meta && OBJECT_META_FIELDS.contains(&key.as_str()) {
                    // Specified metadata of an embedded resource is pruned by its schema,
                    // but never removed.
                    if let (Some(child), Some(v)) = (node.property(&key), map.get_mut(&key))
                        && key != "metadata"
                    {
                        prune(child, v, false);
                    }
                    continue;
                }
                if let Some(child) = node.property(&key) {
                    if let Some(v) = map.get_mut(&key) {
                        prune(child, v, false);
                    }
                    continue;
                }
                match &node.additional {
                    Additional::Schema(child) => {
                        if let Some(v) = map.get_mut(&key) {
                            prune(child, v, false);
                        }
                    }
                    Additional::Any => {}
                    Additional::None => {
                        if !node.preserve_unknown {
                            map.remove(&key);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(child) = &node.items {
                for v in items {
                    prune(child, v, false);
                }
            }
        }
        _ => {}
    }
}
