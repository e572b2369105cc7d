//! The step executor: one module per step type.
//!
//! [`execute_step`] runs one attempt of one step and returns what it produced (outputs, a
//! message, the rendered patch or Job) or why it failed. Persisting progress, retries and
//! timeouts are the run controller's job (`controller/runs.rs`). Adding a step type means
//! adding one module here and one arm in [`execute_step`].
//!
//! Every step is written so that executing it again gives the same result (a step found
//! `Running` after a crash is re-executed, never skipped): reads are reads, patches are
//! idempotent by construction (the engine never builds an `add` into an array index), Jobs
//! have deterministic names and are adopted when they already exist.

pub mod approval;
pub mod check;
pub mod job;
pub mod notify;
pub mod patch;
pub mod read_field;
pub mod wait;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use lifeboat_api::{ApprovalRecord, Evidence, GoDuration, RecoveryRun};
use lifeboat_engine::{JsonTemplate, StepAction, Target, Template, TemplateContext, ValidatedStep};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api_errors::{is_connection_error, is_transient};
use crate::clusters::{ClusterError, display_cluster};
use crate::context::Context;

/// Extra time the outer bound of an attempt allows beyond the step's timeout.
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// Everything one attempt of one step needs.
pub struct StepInput<'a> {
    pub ctx: &'a Context,
    pub run: &'a RecoveryRun,
    pub index: usize,
    pub step: &'a ValidatedStep,
    /// `.Values` so far.
    pub values: &'a BTreeMap<String, Value>,
    /// Client for the step's cluster, impersonating the run's service account if any.
    pub client: Client,
    pub dry_run: bool,
    /// 1-based attempt number within this execution of the step.
    pub attempt: u32,
}

/// The object a step acts on, resolved on the step's cluster.
pub struct TargetObject {
    pub api: Api<DynamicObject>,
    pub name: String,
    /// How messages name it: `pods default/my-pod on cluster "db"`.
    pub description: String,
}

impl StepInput<'_> {
    pub fn run_name(&self) -> String {
        self.run.metadata.name.clone().unwrap_or_default()
    }

    /// The run's attempt (1 unless `lifeboat runs retry` started another).
    pub fn run_attempt(&self) -> u32 {
        self.run.status.as_ref().map_or(1, |s| s.attempt())
    }

    pub fn run_namespace(&self) -> String {
        self.run
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string())
    }

    fn cluster(&self) -> Option<&str> {
        self.step.cluster.as_deref()
    }

    /// The data templates see: `.Values`, `.Alert`, `.Run`.
    pub fn template_context(&self) -> TemplateContext<'_> {
        template_context(self.run, self.values)
    }

    /// Renders a template.
    pub fn render(&self, what: &str, template: &Template) -> Result<String, StepFailure> {
        template
            .render(&self.template_context())
            .map_err(|e| StepFailure::permanent(format!("cannot render {what}: {e}")))
    }

    /// Renders every templated leaf of a document.
    pub fn render_json(&self, what: &str, template: &JsonTemplate) -> Result<Value, StepFailure> {
        template
            .render(&self.template_context())
            .map_err(|e| StepFailure::permanent(format!("cannot render {what}: {e}")))
    }

    /// Resolves `target` (rendering its name and namespace) to a dynamic API on the step's
    /// cluster.
    pub async fn resolve(&self, target: &Target) -> Result<TargetObject, StepFailure> {
        self.resolve_on(target, self.cluster(), self.client.clone())
            .await
    }

    /// A client for `cluster` with the step's identity (the run's service account, if any).
    pub async fn client_on(&self, cluster: Option<&str>) -> Result<Client, StepFailure> {
        if cluster == self.cluster() {
            return Ok(self.client.clone());
        }
        let namespace = self.run_namespace();
        let sa = self.run.spec.service_account_name.as_deref();
        self.ctx
            .clusters
            .client_for(cluster, sa.map(|sa| (namespace.as_str(), sa)))
            .await
            .map_err(StepFailure::from_cluster)
    }

    /// Resolves `target` on `cluster` through `client`.
    pub async fn resolve_on(
        &self,
        target: &Target,
        cluster: Option<&str>,
        client: Client,
    ) -> Result<TargetObject, StepFailure> {
        let name = self.render("name", &target.name)?;
        let namespace = match &target.namespace {
            Some(ns) => Some(self.render("namespace", ns)?),
            None => None,
        };
        let resolved = self
            .ctx
            .clusters
            .resolve(cluster, &target.api_version, &target.resource)
            .await
            .map_err(StepFailure::from_cluster)?;
        let (api, description) = if resolved.namespaced {
            let ns = namespace.unwrap_or_else(|| self.run_namespace());
            (
                Api::namespaced_with(client, &ns, &resolved.resource),
                format!("{} {ns}/{name}", target.resource),
            )
        } else {
            (
                Api::all_with(client, &resolved.resource),
                format!("{} {name}", target.resource),
            )
        };
        let description = match cluster {
            Some(c) => format!("{description} on cluster {c:?}"),
            None => description,
        };
        Ok(TargetObject {
            api,
            name,
            description,
        })
    }

    /// Describes an API error of this step, naming the cluster when it is unreachable.
    pub fn api_failure(&self, doing: &str, e: &kube::Error) -> StepFailure {
        let message = match e {
            kube::Error::Api(s) => format!("{doing}: {} ({} {})", s.message, s.code, s.reason),
            _ if is_connection_error(e) => format!(
                "{doing}: {} is unreachable: {e}",
                display_cluster(self.cluster())
            ),
            _ => format!("{doing}: {e}"),
        };
        StepFailure {
            retryable: is_transient(e),
            ..StepFailure::permanent(message)
        }
    }
}

/// The data templates see for `run` with the outputs `values`.
pub fn template_context<'a>(
    run: &'a RecoveryRun,
    values: &'a BTreeMap<String, Value>,
) -> TemplateContext<'a> {
    TemplateContext {
        values,
        alert: &run.spec.alert_spec,
        run_name: run.metadata.name.as_deref().unwrap_or_default(),
        run_namespace: run.metadata.namespace.as_deref().unwrap_or_default(),
        run_phase: run
            .status
            .as_ref()
            .map_or("Pending", |s| s.outcome.unwrap_or(s.phase).as_str()),
        run_message: run
            .status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .unwrap_or_default(),
    }
}

/// What a successful attempt produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StepOutput {
    /// New outputs (merged into `.Values`).
    pub values: BTreeMap<String, Value>,
    /// What happened, for the step's status.
    pub message: String,
    /// The rendered patch or Job, for the record.
    pub rendered: Option<Value>,
    /// Name of the Job a job step created or adopted.
    pub job_name: Option<String>,
    /// What a check step observed.
    pub evidence: Vec<Evidence>,
    /// The decisions an approval step counted.
    pub approvals: Vec<ApprovalRecord>,
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub struct StepFailure {
    pub message: String,
    /// Whether retrying the attempt may succeed (the step's retry policy decides whether it
    /// is retried at all).
    pub retryable: bool,
    /// The rendered patch or Job, when the failure came after rendering (boxed: keeps
    /// `Result<_, StepFailure>` small).
    pub rendered: Option<Box<Value>>,
    pub job_name: Option<String>,
    /// A check did not hold: the run stops `Aborted` (never retried).
    pub abort: bool,
    /// What a check step observed.
    pub evidence: Vec<Evidence>,
    /// The decisions an approval step counted.
    pub approvals: Vec<ApprovalRecord>,
}

impl StepFailure {
    pub fn permanent(message: impl Into<String>) -> Self {
        StepFailure {
            message: message.into(),
            retryable: false,
            rendered: None,
            job_name: None,
            abort: false,
            evidence: Vec::new(),
            approvals: Vec::new(),
        }
    }

    /// A check that did not hold.
    pub fn abort(message: impl Into<String>) -> Self {
        StepFailure {
            abort: true,
            ..Self::permanent(message)
        }
    }

    pub fn with_evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }

    pub fn with_approvals(mut self, approvals: Vec<ApprovalRecord>) -> Self {
        self.approvals = approvals;
        self
    }

    pub fn retryable(message: impl Into<String>) -> Self {
        StepFailure {
            retryable: true,
            ..Self::permanent(message)
        }
    }

    pub fn from_cluster(e: ClusterError) -> Self {
        StepFailure {
            retryable: e.is_transient(),
            ..Self::permanent(e.to_string())
        }
    }

    pub fn with_rendered(mut self, rendered: Option<Value>) -> Self {
        if self.rendered.is_none() {
            self.rendered = rendered.map(Box::new);
        }
        self
    }

    pub fn with_job(mut self, job: Option<String>) -> Self {
        if self.job_name.is_none() {
            self.job_name = job;
        }
        self
    }
}

/// Runs one attempt of `input.step`, bounded by its timeout.
pub async fn execute_step(input: &StepInput<'_>) -> Result<StepOutput, StepFailure> {
    let fut = async {
        match &input.step.action {
            StepAction::ReadField(action) => read_field::execute(input, action).await,
            StepAction::Patch(action) => patch::execute(input, action).await,
            StepAction::Job(action) => job::execute(input, action).await,
            StepAction::Wait(action) => wait::execute(input, action).await,
            StepAction::Check(action) => check::execute(input, action).await,
            StepAction::Approval(action) => approval::execute(input, action).await,
            StepAction::Notify(action) => notify::execute(input, action).await,
        }
    };
    // Steps that wait (wait, job) enforce `timeout` themselves with a precise message; the
    // grace lets them report it before this outer bound fires.
    let timeout = input.step.timeout;
    match tokio::time::timeout(timeout + TIMEOUT_GRACE, fut).await {
        Ok(r) => r,
        Err(_) => Err(StepFailure::retryable(format!(
            "timed out after {}",
            GoDuration(timeout)
        ))),
    }
}

/// Watches `name` through `api` until `done` holds for the object (`None` = absent), and
/// returns the object that satisfied it. Watch errors that are transient (dropped watch,
/// 410 Expired, 5xx) are absorbed by the watcher's backoff; a permanent one ends the wait.
/// Callers bound this with a timeout.
pub async fn watch_until<K, P>(api: Api<K>, name: &str, mut done: P) -> Result<Option<K>, String>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    P: FnMut(Option<&K>) -> bool,
{
    let stream = watcher::watch_object(api, name).default_backoff();
    futures::pin_mut!(stream);
    loop {
        match stream.try_next().await {
            Ok(Some(obj)) => {
                if done(obj.as_ref()) {
                    return Ok(obj);
                }
            }
            Ok(None) => return Err("watch ended unexpectedly".to_string()),
            Err(e) => {
                let permanent = match &e {
                    watcher::Error::InitialListFailed(k)
                    | watcher::Error::WatchStartFailed(k)
                    | watcher::Error::WatchFailed(k) => !is_transient(k),
                    watcher::Error::WatchError(s) => !matches!(s.code, 410 | 429 | 500..=599),
                    _ => false,
                };
                if permanent {
                    return Err(e.to_string());
                }
                tracing::debug!(error = %e, "watch error; continuing");
            }
        }
    }
}
