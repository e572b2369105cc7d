//! RFC 7386 JSON merge patch.

use serde_json::Value;

use super::PatchError;

/// Apply an RFC 7386 merge patch: objects merge recursively, `null` deletes a key, every
/// other value (arrays included) replaces.
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    Ok(out)
}
