//! Namespaces: the name label, the `kubernetes` finalizer, phase Active.

use serde_json::{Value, json};

use super::Write;
use crate::error::SimError;

/// Defaults a Namespace being written.
pub(super) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    if w.old.is_none() {
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] =
            Value::String(w.name.to_string());
        obj["spec"]["finalizers"] = json!(["kubernetes"]);
    }
    obj["status"]["phase"] = json!("Active");
    Ok(())
}
