//! Jobs: the pod template's rules, restart policy and deadline checks, an immutable
//! template, and kube-apiserver's defaults (selector, labels, completions).

use serde_json::{Map, Value, json};

use super::Write;
use super::pod::{default_pod_spec, pod_spec_causes};
use crate::error::{SimError, cause};
use crate::object::meta_str;

/// Defaults and validates a Job being written.
pub(super) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    default_pod_spec(&mut obj["spec"]["template"]["spec"]);
    let mut causes = pod_spec_causes(&obj["spec"]["template"]["spec"], "spec.template.spec");
    let rp = obj["spec"]["template"]["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or_default();
    if rp != "Never" && rp != "OnFailure" {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.template.spec.restartPolicy",
            format!("Unsupported value: \"{rp}\": supported values: \"OnFailure\", \"Never\""),
        ));
    }
    if let Some(d) = obj["spec"]["activeDeadlineSeconds"].as_i64()
        && d <= 0
    {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.activeDeadlineSeconds",
            format!("Invalid value: {d}: must be greater than 0"),
        ));
    }
    if let Some(o) = w.old
        && o["spec"]["template"] != obj["spec"]["template"]
        && !w.status
    {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.template",
            "Invalid value: field is immutable",
        ));
    }
    if !causes.is_empty() {
        return Err(w.invalid(causes));
    }
    if w.old.is_none() {
        let uid = meta_str(obj, "uid").to_string();
        let labels = json!({
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": w.name,
            "controller-uid": uid,
            "job-name": w.name,
        });
        let spec = &mut obj["spec"];
        for (k, d) in [
            ("backoffLimit", json!(6)),
            ("completions", json!(1)),
            ("parallelism", json!(1)),
            ("suspend", json!(false)),
            ("completionMode", json!("NonIndexed")),
        ] {
            if spec[k].is_null() {
                spec[k] = d;
            }
        }
        if spec["selector"].is_null() {
            spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
        }
        if let Some(l) = labels.as_object() {
            for (k, v) in l {
                spec["template"]["metadata"]["labels"][k.as_str()] = v.clone();
            }
        }
        if spec["manualSelector"].is_null() {
            spec["manualSelector"] = json!(false);
        }
        if spec["podReplacementPolicy"].is_null() && spec["podFailurePolicy"].is_null() {
            spec["podReplacementPolicy"] = json!("TerminatingOrFailed");
        }
        // A Job without labels gets its pod template's.
        if obj["metadata"]["labels"]
            .as_object()
            .is_none_or(Map::is_empty)
        {
            obj["metadata"]["labels"] = obj["spec"]["template"]["metadata"]["labels"].clone();
        }
        if obj["status"].is_null() {
            obj["status"] = json!({});
        }
    }
    Ok(())
}
