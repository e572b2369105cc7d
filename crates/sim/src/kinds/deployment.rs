//! Deployments: the pod template's rules; with no ReplicaSets, a deployment reports itself
//! rolled out.

use serde_json::{Value, json};

use super::Write;
use super::pod::{default_pod_spec, pod_spec_causes};
use crate::error::SimError;

/// Defaults and validates a Deployment being written.
pub(super) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    default_pod_spec(&mut obj["spec"]["template"]["spec"]);
    let causes = pod_spec_causes(&obj["spec"]["template"]["spec"], "spec.template.spec");
    if !causes.is_empty() {
        return Err(w.invalid(causes));
    }
    if obj["spec"]["replicas"].is_null() {
        obj["spec"]["replicas"] = json!(1);
    }
    if !w.status {
        // No replica sets or pods: the deployment reports itself rolled out.
        let r = obj["spec"]["replicas"].clone();
        let generation = obj["metadata"]["generation"].clone();
        obj["status"] = json!({
            "observedGeneration": generation, "replicas": r, "readyReplicas": r,
            "updatedReplicas": r, "availableReplicas": r,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
        });
    }
    Ok(())
}
