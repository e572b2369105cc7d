//! The CustomResourceDefinitions, generated from the types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::{ReceivedAlert, RecoveryApproval, RecoveryPlan, RecoveryRun};

/// The CRDs, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        ReceivedAlert::crd(),
        RecoveryPlan::crd(),
        RecoveryRun::crd(),
        RecoveryApproval::crd(),
    ]
}

/// The CRDs as one multi-document YAML stream, as checked in under `deploy/crds/`.
pub fn to_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

/// File name of each CRD under `deploy/crds/` (`<plural>.<group>.yaml`).
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default())
}
