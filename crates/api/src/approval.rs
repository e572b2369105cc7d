//! `RecoveryApproval`: one person's decision on a run waiting at an `approval` step.
//!
//! Who decided is not the client's claim: the shipped ValidatingAdmissionPolicy
//! (`deploy/policy/approver-identity.yaml`) refuses any approval whose `spec.approver` is
//! not the user the API server authenticated, and approvals cannot be changed. Who may
//! approve is plain RBAC: `create` on `recoveryapprovals` in the run's namespace (the
//! shipped ClusterRole `lifeboat-approver`).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A decision on a run's approval step.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "recovery.elotl.co",
    version = "v1alpha1",
    kind = "RecoveryApproval",
    namespaced,
    shortname = "rap",
    category = "recovery",
    doc = "A decision (Approve or Reject) on a RecoveryRun waiting at an approval step, by the authenticated user named in spec.approver.",
    printcolumn = r#"{"name":"Run", "type":"string", "jsonPath":".spec.runName"}"#,
    printcolumn = r#"{"name":"Step", "type":"integer", "jsonPath":".spec.step"}"#,
    printcolumn = r#"{"name":"Decision", "type":"string", "jsonPath":".spec.decision"}"#,
    printcolumn = r#"{"name":"Approver", "type":"string", "jsonPath":".spec.approver"}"#,
    printcolumn = r#"{"name":"Age", "type":"date", "jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryApprovalSpec {
    /// The RecoveryRun decided on (same namespace).
    pub run_name: String,
    /// Index of the approval step (0-based), as in the run's `status.currentStep`.
    pub step: u32,
    pub decision: ApprovalDecision,
    /// The user deciding: must be the user the API server authenticated for the request.
    pub approver: String,
    /// Why, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The run's attempt decided on (as in its `status.attempt`; 1 when absent): a decision
    /// on an earlier attempt does not count after `lifeboat runs retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

impl RecoveryApprovalSpec {
    /// The attempt decided on (1 unless set).
    pub fn attempt(&self) -> u32 {
        self.attempt.unwrap_or(1)
    }
}

/// Approve or reject.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ApprovalDecision {
    Approve,
    Reject,
}
