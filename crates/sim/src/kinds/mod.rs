//! The rules kube-apiserver's registry applies to built-in kinds on every write: defaulting
//! and validation, with its field errors. One module per kind; [`prepare`] dispatches.
//! Custom resources are checked against their CRD's schema instead (`crate::structural`).

mod config_map;
mod crd;
mod deployment;
mod job;
mod namespace;
mod pod;

pub use pod::LOG_ANNOTATION;
pub mod rbac;
mod secret;
mod service;

use serde_json::Value;

pub(crate) use pod::log as pod_log;

use crate::error::{Cause, SimError, cause};
use crate::registry::ResourceInfo;

/// One object being written, as the per-kind rules see it.
pub(crate) struct Write<'a> {
    pub res: &'a ResourceInfo,
    /// `metadata.name` of the object.
    pub name: &'a str,
    /// The stored object an update replaces; `None` on create.
    pub old: Option<&'a Value>,
    /// Whether the write goes to the status subresource.
    pub status: bool,
}

impl Write<'_> {
    /// The 422 Invalid error for this object.
    fn invalid(&self, causes: Vec<Cause>) -> SimError {
        SimError::invalid(&self.res.group, &self.res.kind, self.name, causes)
    }
}

/// Defaults and validates a built-in object being written.
pub(crate) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    match (w.res.group.as_str(), w.res.plural.as_str()) {
        ("", "secrets") => secret::prepare(w, obj),
        ("", "configmaps") => config_map::prepare(w, obj),
        ("", "namespaces") => namespace::prepare(w, obj),
        ("", "services") => service::prepare(w, obj),
        ("", "pods") => pod::prepare(w, obj),
        ("batch", "jobs") => job::prepare(w, obj),
        ("apps", "deployments") => deployment::prepare(w, obj),
        ("rbac.authorization.k8s.io", plural) => {
            let causes = rbac::prepare(plural, obj, w.old);
            if causes.is_empty() {
                Ok(())
            } else {
                Err(w.invalid(causes))
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => crd::prepare(w, obj),
        _ => Ok(()),
    }
}

/// The keys of a ConfigMap's or Secret's data maps must be valid config keys.
fn data_key_causes(obj: &Value, fields: &[&str]) -> Vec<Cause> {
    let mut causes = Vec::new();
    for field in fields {
        let Some(m) = obj[*field].as_object() else {
            continue;
        };
        for k in m.keys() {
            let valid = !k.is_empty()
                && k.len() <= 253
                && k != "."
                && k != ".."
                && !k.starts_with("..")
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid {
                causes.push(cause(
                    "FieldValueInvalid",
                    &format!("{field}[{k}]"),
                    format!("Invalid value: \"{k}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"),
                ));
            }
        }
    }
    causes
}
