//! The pure recovery engine of lifeboat: everything about plans and runs that needs no
//! Kubernetes client and does no I/O, so it can be unit-, property- and fuzz-tested.
//!
//! - [`check`]: the comparisons of `check` steps;
//! - [`fieldpath`]: kubectl-style field paths, for reading and for patching;
//! - [`template`]: the Go `text/template` subset used in step values;
//! - [`matching`]: alert labels against plan labels, and an index for many plans;
//! - [`patch`]: building idempotent patch requests for patch steps;
//! - [`plan`]: plans and runs after validation, as typed steps;
//! - [`validate`]: plan and run validation into [`plan`]'s types, and the offline
//!   `lifeboat validate` check;
//! - [`wait`]: the condition of a `wait` step.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod check;
pub mod fieldpath;
pub mod matching;
pub mod patch;
pub mod plan;
pub mod template;
pub mod validate;
pub mod wait;

pub use check::assertion_holds;
pub use fieldpath::{FieldPath, FieldPathError, Segment};
pub use matching::{PlanIndex, labels_match};
pub use patch::{
    BuiltPatch, PatchError, build_patch, is_builtin_api_version, needs_current_object,
};
pub use plan::{
    ApprovalAction, CheckAction, CheckAssertion, FieldCheck, JobAction, NotifyAction, PatchAction,
    ProbeCheck, ProbeKind, ReadFieldAction, Retries, StepAction, Target, ValidatedNotification,
    ValidatedPlan, ValidatedRun, ValidatedStep, WaitAction,
};
pub use template::{JsonTemplate, Template, TemplateContext, TemplateError, render_str};
pub use validate::{
    DocumentReport, Problem, ValidationOptions, check_documents, validate_plan, validate_run,
};
pub use wait::wait_satisfied;
