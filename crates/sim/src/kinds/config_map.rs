//! ConfigMaps: string values, valid data keys.

use serde_json::Value;

use super::{Write, data_key_causes};
use crate::error::{Cause, SimError, cause};

/// Validates a ConfigMap being written.
pub(super) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    if let Some(data) = obj["data"].as_object() {
        let bad: Vec<Cause> = data
            .iter()
            .filter(|(_, v)| !v.is_string())
            .map(|(k, _)| {
                cause(
                    "FieldValueTypeInvalid",
                    &format!("data.{k}"),
                    "Invalid value: must be a string",
                )
            })
            .collect();
        if !bad.is_empty() {
            return Err(SimError::bad_request(format!(
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal into Go struct field ConfigMap.data of type string ({})",
                bad[0].field
            )));
        }
    }
    let causes = data_key_causes(obj, &["data", "binaryData"]);
    if !causes.is_empty() {
        return Err(w.invalid(causes));
    }
    Ok(())
}
