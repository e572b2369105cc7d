//! Pods: kube-apiserver's pod spec defaults and validation (shared with the pod templates of
//! Jobs and Deployments), the pod update rule, a standalone pod running at once, and the
//! log subresource (the text of the pod's `sim.lifeboat.dev/log` annotation).

use serde_json::{Value, json};

use super::Write;
use crate::error::{Cause, SimError, cause};
use crate::object::now_rfc3339;

/// Pod annotation holding what `GET …/pods/NAME/log` answers, for every container of the
/// pod (a Job's pods take it from the pod template); without it the log is empty.
pub const LOG_ANNOTATION: &str = "sim.lifeboat.dev/log";

/// Defaults and validates a Pod being written.
pub(super) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    default_pod_spec(&mut obj["spec"]);
    // A pod's own default (`SetDefaults_Pod`), not its templates'.
    if obj["spec"].is_object() && obj["spec"]["enableServiceLinks"].is_null() {
        obj["spec"]["enableServiceLinks"] = json!(true);
    }
    let mut causes = pod_spec_causes(&obj["spec"], "spec");
    if let Some(o) = w.old
        && !w.status
    {
        causes.extend(pod_update_causes(&o["spec"], &obj["spec"]));
    }
    if !causes.is_empty() {
        return Err(w.invalid(causes));
    }
    if w.old.is_none() && obj["status"].is_null() {
        // A standalone pod starts running at once (no scheduler or kubelet).
        let statuses: Vec<Value> = obj["spec"]["containers"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        json!({
                            "name": c["name"], "image": c["image"], "ready": true,
                            "restartCount": 0, "started": true,
                            "state": {"running": {"startedAt": now_rfc3339()}},
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let owned_by_job = obj["metadata"]["ownerReferences"]
            .as_array()
            .is_some_and(|r| r.iter().any(|o| o["kind"] == "Job"));
        if !owned_by_job {
            obj["status"] = json!({
                "phase": "Running",
                "conditions": [
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now_rfc3339()},
                    {"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339()},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now_rfc3339()},
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()},
                ],
                "containerStatuses": statuses,
                "podIP": "10.244.0.10",
                "startTime": now_rfc3339(),
                "qosClass": "BestEffort",
            });
        }
    }
    Ok(())
}

/// The log of one of the pod's containers (`container`, which may be left out when the pod
/// has one): the pod's [`LOG_ANNOTATION`], or nothing. The container is checked as
/// kube-apiserver checks it before asking the kubelet, with its 400s.
pub(crate) fn log(pod: &Value, container: Option<&str>) -> Result<String, SimError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    // Init, regular and ephemeral containers, in kube-apiserver's order.
    let names: Vec<&str> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| pod["spec"][*list].as_array())
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    match container.filter(|c| !c.is_empty()) {
        Some(c) if !names.contains(&c) => {
            return Err(SimError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        Some(_) => {}
        None => match pod["spec"]["containers"].as_array().map_or(0, Vec::len) {
            1 => {}
            0 => {
                return Err(SimError::bad_request(format!(
                    "a container name must be specified for pod {name}"
                )));
            }
            _ => {
                return Err(SimError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                )));
            }
        },
    }
    Ok(pod["metadata"]["annotations"][LOG_ANNOTATION]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// kube-apiserver's defaults of a pod spec (`SetDefaults_PodSpec`, `SetDefaults_Container`),
/// for pods and pod templates. Admission (ServiceAccount token volume, priority,
/// tolerations) is not simulated.
pub(super) fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    for (k, d) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
    ] {
        if s.get(k).is_none_or(Value::is_null) {
            s.insert(k.to_string(), d);
        }
    }
    for list in ["initContainers", "containers"] {
        let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in cs.iter_mut().filter_map(Value::as_object_mut) {
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            // `:latest` or no tag (a digest pins the image): pulled every time.
            let last = image.rsplit('/').next().unwrap_or_default();
            let pull = if !image.contains('@')
                && last.split_once(':').is_none_or(|(_, t)| t == "latest")
            {
                "Always"
            } else {
                "IfNotPresent"
            };
            for (k, d) in [
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
                ("imagePullPolicy", json!(pull)),
                ("resources", json!({})),
            ] {
                if c.get(k).is_none_or(Value::is_null) {
                    c.insert(k.to_string(), d);
                }
            }
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.entry("protocol").or_insert_with(|| json!("TCP"));
                }
            }
        }
    }
}

/// kube-apiserver's pod update rule: of a pod's spec only the container images,
/// `activeDeadlineSeconds`, `tolerations` and `terminationGracePeriodSeconds` may change.
fn pod_update_causes(old: &Value, new: &Value) -> Vec<Cause> {
    let mutable_removed = |spec: &Value| {
        let mut s = spec.clone();
        if let Some(m) = s.as_object_mut() {
            for f in [
                "activeDeadlineSeconds",
                "tolerations",
                "terminationGracePeriodSeconds",
            ] {
                m.remove(f);
            }
            for list in ["containers", "initContainers"] {
                if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("image");
                    }
                }
            }
        }
        s
    };
    if mutable_removed(old) == mutable_removed(new) {
        return Vec::new();
    }
    vec![cause(
        "FieldValueForbidden",
        "spec",
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    )]
}

pub(super) fn pod_spec_causes(spec: &Value, path: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    match spec["containers"].as_array() {
        None => causes.push(cause(
            "FieldValueRequired",
            &format!("{path}.containers"),
            "Required value",
        )),
        Some(cs) if cs.is_empty() => causes.push(cause(
            "FieldValueRequired",
            &format!("{path}.containers"),
            "Required value",
        )),
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                if c["name"].as_str().is_none_or(str::is_empty) {
                    causes.push(cause(
                        "FieldValueRequired",
                        &format!("{path}.containers[{i}].name"),
                        "Required value",
                    ));
                }
                if c["image"].as_str().is_none_or(str::is_empty) {
                    causes.push(cause(
                        "FieldValueRequired",
                        &format!("{path}.containers[{i}].image"),
                        "Required value",
                    ));
                }
            }
        }
    }
    causes
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn log_names_init_containers_first_when_asking_for_one() {
        let pod = json!({
            "metadata": {"name": "p", "annotations": {LOG_ANNOTATION: "out"}},
            "spec": {
                "initContainers": [{"name": "setup"}],
                "containers": [{"name": "a"}, {"name": "b"}],
            },
        });
        assert_eq!(
            log(&pod, None).unwrap_err().to_status()["message"],
            "a container name must be specified for pod p, choose one of: [setup a b]"
        );
        assert_eq!(log(&pod, Some("setup")).unwrap(), "out");
        assert_eq!(log(&pod, Some("")).unwrap_err().code(), 400);
    }
}
