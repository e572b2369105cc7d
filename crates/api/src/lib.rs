//! API types of lifeboat: the three custom resources of `recovery.elotl.co/v1alpha1`.
//!
//! - [`ReceivedAlert`]: an alert as it arrived (from Alertmanager, or created by hand);
//! - [`RecoveryPlan`]: alert labels to match plus ordered [`Step`]s;
//! - [`RecoveryRun`]: one execution of a plan's steps, with its progress in its status.
//!
//! These types are shared by the engine, the operator and the CLI. The CRDs in
//! `deploy/crds/` are generated from them (`lifeboat crds`), never written by hand.

pub mod alert;
pub mod approval;
pub mod cluster;
pub mod conditions;
pub mod crds;
pub mod duration;
pub mod labels;
pub mod plan;
pub mod run;
pub mod schema;
pub mod step;

pub use alert::{ReceivedAlert, ReceivedAlertSpec, ReceivedAlertStatus, SkippedPlan};
pub use approval::{ApprovalDecision, RecoveryApproval, RecoveryApprovalSpec};
pub use cluster::cluster_secret;
pub use conditions::Condition;
pub use duration::GoDuration;
pub use labels::Labels;
pub use plan::{ConcurrencyPolicy, RecoveryPlan, RecoveryPlanSpec, RecoveryPlanStatus};
pub use run::{
    AlertSpec, ApprovalRecord, AttemptRecord, Evidence, NotificationRecord, RecoveryRun,
    RecoveryRunSpec, RecoveryRunStatus, RunPhase, StepPhase, StepStatus,
};
pub use step::{
    ApprovalStep, Assertion, CheckStep, ClusterProbe, ClusterState, CompareAs, FieldProbe, JobStep,
    NotifyStep, Operator, PatchOverride, PatchStep, PatchType, PatchValue, PlanNotification, Probe,
    Quorum, ReadFieldStep, RetryPolicy, RunEvent, SecretKeyRef, Step, StepTarget, StepType,
    WaitCondition, WaitStep, WebhookTarget,
};

/// The API group of every lifeboat resource.
pub const GROUP: &str = "recovery.elotl.co";
/// The API version of every lifeboat resource.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` as written in manifests.
pub const API_VERSION: &str = "recovery.elotl.co/v1alpha1";

/// Label put on every RecoveryRun naming the plan it was created from.
pub const LABEL_PLAN: &str = "recovery.elotl.co/plan";
/// Label put on every RecoveryRun naming the ReceivedAlert that started it.
pub const LABEL_ALERT: &str = "recovery.elotl.co/alert";
/// Label put on every object (Job, Event…) that lifeboat creates for a run.
pub const LABEL_RUN: &str = "recovery.elotl.co/run";
/// Annotation on ReceivedAlerts (set by the webhook) and RecoveryRuns (copied from their
/// alert): when lifeboat received the alert, RFC 3339 with sub-second precision.
/// `creationTimestamp` has whole seconds only, too coarse for alert-to-run latency.
pub const ANNOTATION_RECEIVED_AT: &str = "recovery.elotl.co/received-at";
/// Label marking a Secret as a cluster registration (the Argo CD convention).
pub const LABEL_CLUSTER_SECRET: &str = "recovery.elotl.co/secret-type";
/// Value of [`LABEL_CLUSTER_SECRET`] on cluster Secrets.
pub const CLUSTER_SECRET_TYPE: &str = "cluster";
