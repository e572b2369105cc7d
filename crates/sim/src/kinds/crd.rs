//! CustomResourceDefinitions: kube-apiserver's defaults, validation of names, versions and
//! structural schemas, and the Established status.

use serde_json::{Value, json};

use super::Write;
use crate::error::SimError;
use crate::object::now_rfc3339;
use crate::registry;

/// Defaults and validates a CRD being written.
pub(super) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    // kube-apiserver's defaults: the list kind, the singular name, no conversion.
    let kind = obj["spec"]["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !kind.is_empty() && obj["spec"]["names"].is_object() {
        let names = &mut obj["spec"]["names"];
        if names["listKind"].is_null() {
            names["listKind"] = json!(format!("{kind}List"));
        }
        if names["singular"].is_null() {
            names["singular"] = json!(kind.to_ascii_lowercase());
        }
    }
    if obj["spec"].is_object() && obj["spec"]["conversion"].is_null() {
        obj["spec"]["conversion"] = json!({"strategy": "None"});
    }
    // Validate the CRD (names, versions, structural schemas) before storing it.
    registry::from_crd(obj).map_err(|causes| w.invalid(causes))?;
    if !w.status {
        let storage_version = obj["spec"]["versions"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["storage"] == true))
            .and_then(|v| v["name"].as_str())
            .unwrap_or_default()
            .to_string();
        let now = now_rfc3339();
        let keep = |t: &str| {
            w.old
                .and_then(|o| o["status"]["conditions"].as_array())
                .and_then(|cs| cs.iter().find(|c| c["type"] == t))
                .and_then(|c| c["lastTransitionTime"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| now.clone())
        };
        obj["status"] = json!({
            "acceptedNames": obj["spec"]["names"].clone(),
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": keep("NamesAccepted")},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": keep("Established")},
            ],
            "storedVersions": [storage_version],
        });
    }
    Ok(())
}
