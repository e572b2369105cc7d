//! Secrets: `stringData` folded into `data`, type `Opaque` by default, valid data keys.

use base64::Engine;
use serde_json::{Value, json};

use super::{Write, data_key_causes};
use crate::error::SimError;

/// Defaults and validates a Secret being written.
pub(super) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    if let Some(sd) = obj.get("stringData").and_then(Value::as_object).cloned() {
        for (k, v) in sd {
            let s = v.as_str().unwrap_or_default();
            obj["data"][k.as_str()] =
                Value::String(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
        }
        if let Some(m) = obj.as_object_mut() {
            m.remove("stringData");
        }
    }
    if obj["type"].is_null() {
        obj["type"] = json!("Opaque");
    }
    let causes = data_key_causes(obj, &["data"]);
    if !causes.is_empty() {
        return Err(w.invalid(causes));
    }
    Ok(())
}
