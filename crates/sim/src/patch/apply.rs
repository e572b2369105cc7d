//! An approximation of server-side apply (`application/apply-patch+yaml`).
//!
//! The simulator does not track field managers. The applied configuration is merged into
//! the current object like a strategic merge patch: lists with merge keys of built-in kinds
//! merge by key, every other list (all lists of custom resources) is replaced, and fields
//! the applied configuration does not mention are kept. That is enough for
//! `kubectl apply --server-side` to create and update objects.

use serde_json::{Map, Value};

use super::PatchError;
use super::merge_keys::MergeKeys;
use super::strategic::merge_map;

/// Merge an applied configuration into `current` (an empty object when creating).
pub fn apply_server_side(
    current: &Value,
    applied: &Value,
    merge_keys: &MergeKeys,
) -> Result<Value, PatchError> {
    let applied_map = applied.as_object().ok_or_else(|| {
        PatchError::Malformed(format!(
            "an apply configuration must be an object, got {}",
            super::json::type_name(applied)
        ))
    })?;
    for field in ["apiVersion", "kind"] {
        match applied_map.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {
                if let Some(cur) = current.get(field).and_then(Value::as_str)
                    && cur != s
                {
                    return Err(PatchError::Malformed(format!(
                        "{field} of the applied configuration ({s}) does not match the object ({cur})"
                    )));
                }
            }
            _ => {
                return Err(PatchError::Malformed(format!(
                    "invalid object: {field} must be set in an apply configuration"
                )));
            }
        }
    }
    let applied_name = applied.pointer("/metadata/name").and_then(Value::as_str);
    let current_name = current.pointer("/metadata/name").and_then(Value::as_str);
    if let (Some(a), Some(c)) = (applied_name, current_name)
        && a != c
    {
        return Err(PatchError::Malformed(format!(
            "the name of the object ({a}) does not match the name on the URL ({c})"
        )));
    }
    let original = match current {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    let merged = merge_map(original, applied_map, "", merge_keys)?.unwrap_or_default();
    Ok(Value::Object(merged))
}
