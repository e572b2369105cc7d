//! RFC 6902 JSON Patch: the code path the simulator serves `application/json-patch+json`
//! requests with.
//!
//! Operations are applied by the `json-patch` crate, which passes the whole public
//! conformance suite (`tests/json_patch_conformance.rs`) as it is. Each operation is
//! checked here first only to tell a malformed request (400: not a list, unknown `op`,
//! missing `path`/`from`/`value`, a `path` that is not a JSON Pointer) from one that does
//! not apply to this object (422), with a message naming the operation's index, as
//! kube-apiserver does.
//!
//! The document is patched on a copy, so a failing operation leaves `doc` untouched (the
//! patch is atomic, as RFC 6902 §5 requires).

use serde_json::Value;

use super::PatchError;

/// Apply an RFC 6902 JSON Patch (`patch` must be a JSON array of operations) to `doc`.
///
/// A patch that is not a list of well-formed operations is [`PatchError::Malformed`] (400);
/// an operation that cannot be applied (missing path, failed `test`…) is
/// [`PatchError::Invalid`] (422).
pub fn apply_json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        PatchError::Malformed(format!(
            "a JSON Patch must be a JSON array of operations, got {}",
            type_name(patch)
        ))
    })?;
    for (i, op) in ops.iter().enumerate() {
        check_operation(i, op)?;
    }
    let parsed: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Malformed(format!("invalid JSON Patch: {e}")))?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &parsed).map_err(|e| PatchError::Invalid(describe(&e, ops)))?;
    Ok(out)
}

/// Validate one operation object beyond what the serde model of `json-patch` checks.
fn check_operation(index: usize, op: &Value) -> Result<(), PatchError> {
    let malformed = |what: String| PatchError::Malformed(format!("operation {index}: {what}"));
    let obj = op
        .as_object()
        .ok_or_else(|| malformed(format!("must be a JSON object, got {}", type_name(op))))?;
    let name = match obj.get("op") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(malformed(format!(
                "\"op\" must be a string, got {}",
                type_name(other)
            )));
        }
        None => return Err(malformed("missing \"op\"".to_string())),
    };
    let (needs_value, needs_from) = match name {
        "add" | "replace" | "test" => (true, false),
        "remove" => (false, false),
        "move" | "copy" => (false, true),
        other => return Err(malformed(format!("unknown operation \"{other}\""))),
    };
    check_pointer_member(index, obj.get("path"), "path")?;
    if needs_from {
        check_pointer_member(index, obj.get("from"), "from")?;
    }
    if needs_value && !obj.contains_key("value") {
        return Err(malformed(format!("\"{name}\" requires a \"value\"")));
    }
    Ok(())
}

/// `path`/`from` must be a string holding a JSON Pointer (empty, or starting with `/`).
fn check_pointer_member(
    index: usize,
    member: Option<&Value>,
    field: &str,
) -> Result<(), PatchError> {
    let malformed = |what: String| PatchError::Malformed(format!("operation {index}: {what}"));
    let pointer = match member {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(malformed(format!(
                "\"{field}\" must be a string, got {}",
                type_name(other)
            )));
        }
        None => return Err(malformed(format!("missing \"{field}\""))),
    };
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(malformed(format!(
            "\"{field}\" {pointer:?} is not a JSON Pointer (it must be empty or start with '/')"
        )));
    }
    Ok(())
}

/// A message for a failed operation naming the operation, its index and its path.
fn describe(err: &json_patch::PatchError, ops: &[Value]) -> String {
    let op = ops
        .get(err.operation)
        .and_then(|o| o.get("op"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let path = err.path.as_str();
    match &err.kind {
        json_patch::PatchErrorKind::TestFailed => {
            format!(
                "test operation (index {}) failed: the value at {path:?} does not match",
                err.operation
            )
        }
        json_patch::PatchErrorKind::InvalidFromPointer => format!(
            "{op} operation (index {}) does not apply: \"from\" does not name an existing location",
            err.operation
        ),
        json_patch::PatchErrorKind::CannotMoveInsideItself => format!(
            "move operation (index {}) does not apply: cannot move a value into itself ({path:?})",
            err.operation
        ),
        _ => format!(
            "{op} operation (index {}) does not apply: path {path:?} does not exist",
            err.operation
        ),
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
