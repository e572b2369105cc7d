//! Steps: from the wire format (`lifeboat_api::Step`) to [`ValidatedStep`], reporting every
//! problem on the way. Each check returns the parsed value it checked, so what was
//! validated is exactly what runs.

use std::collections::BTreeSet;

use lifeboat_api::{
    ApprovalDecision, CheckStep, FieldProbe, Operator, PatchType, PlanNotification, Probe, Step,
    StepTarget, StepType, WaitCondition,
};
use serde_json::Value;

use super::{MAX_RETRIES, Problem, ValidationOptions, check_duration, known_list};
use crate::fieldpath::{FieldPath, Segment};
use crate::patch::is_builtin_api_version;
use crate::plan::{
    ApprovalAction, CheckAction, CheckAssertion, DEFAULT_BACKOFF, DEFAULT_WAIT_TIMEOUT, FieldCheck,
    JobAction, NotifyAction, PatchAction, ProbeCheck, ProbeKind, ReadFieldAction, Retries,
    StepAction, Target, ValidatedNotification, ValidatedStep, WaitAction, default_timeout,
};
use crate::template::{JsonTemplate, Template, location_of};

/// Most distinct approvers an approval step may require.
const MAX_APPROVERS: u32 = 10;

/// The typed steps; problems go to `out` (the steps are complete only if none was added).
pub(super) fn validate_steps(
    out: &mut Vec<Problem>,
    base: &str,
    steps: &[Step],
    opts: &ValidationOptions,
) -> Vec<ValidatedStep> {
    validate_steps_after(out, base, steps, opts, BTreeSet::new())
}

/// The `finally` steps at `base`: they may use any value the steps output (a value the run
/// did not get to is a missing-key error of that finally step at run time), and cannot
/// wait for approval — the run has ended and nobody would be asked.
pub(super) fn validate_finally_steps(
    out: &mut Vec<Problem>,
    base: &str,
    finally: &[Step],
    steps: &[Step],
    opts: &ValidationOptions,
) -> Vec<ValidatedStep> {
    for (i, step) in finally.iter().enumerate() {
        if step.type_ == StepType::Approval {
            out.push(Problem::new(
                format!("{base}[{i}].type"),
                "a finally step cannot be an approval: the run has already ended",
            ));
        }
    }
    validate_steps_after(out, base, finally, opts, outputs(steps))
}

/// The plan's notifications at `base`: bodies may use any value the steps output, like the
/// finally steps.
pub(super) fn validate_notifications(
    out: &mut Vec<Problem>,
    base: &str,
    notifications: &[PlanNotification],
    steps: &[Step],
    opts: &ValidationOptions,
) -> Vec<ValidatedNotification> {
    let produced = outputs(steps);
    let mut validated = Vec::with_capacity(notifications.len());
    for (i, n) in notifications.iter().enumerate() {
        let mut checker = StepChecker {
            out: &mut *out,
            loc: format!("{base}[{i}]"),
            produced: &produced,
            known_clusters: opts.known_clusters,
        };
        let loc = checker.loc.clone();
        if n.events.is_empty() {
            checker.problem(
                format!("{loc}.events"),
                "must name at least one run event (Started, WaitingForApproval, Completed, Failed, Aborted, Cancelled)",
            );
        }
        if let Some(send) = checker.notify(&loc, &n.webhook, &n.body, false)
            && !n.events.is_empty()
        {
            validated.push(ValidatedNotification {
                events: n.events.clone(),
                send,
            });
        }
    }
    validated
}

/// The `.Values` keys `steps` output.
fn outputs(steps: &[Step]) -> BTreeSet<String> {
    steps
        .iter()
        .filter_map(|s| s.read_field.as_ref())
        .map(|r| r.output_key.clone())
        .filter(|k| !k.trim().is_empty())
        .collect()
}

/// [`validate_steps`], with `produced` the `.Values` keys available before the first step.
fn validate_steps_after(
    out: &mut Vec<Problem>,
    base: &str,
    steps: &[Step],
    opts: &ValidationOptions,
    mut produced: BTreeSet<String>,
) -> Vec<ValidatedStep> {
    // The `.Values` keys earlier steps output: a template may only use those.
    let mut validated = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let mut checker = StepChecker {
            out: &mut *out,
            loc: format!("{base}[{i}]"),
            produced: &produced,
            known_clusters: opts.known_clusters,
        };
        let common = checker.common(step, opts);
        let action = checker.action(step);
        if let Some(StepAction::ReadField(r)) = &action {
            produced.insert(r.output_key.clone());
        } else if let (StepType::ReadField, Some(r)) = (step.type_, &step.read_field)
            && !r.output_key.trim().is_empty()
        {
            // Keep checking later steps as if this output existed, so one bad read does
            // not bury the plan under follow-on "no earlier step outputs" problems.
            produced.insert(r.output_key.clone());
        }
        if let (Some((timeout, retries)), Some(action)) = (common, action) {
            validated.push(ValidatedStep {
                title: step.display_name(),
                cluster: step.cluster.clone(),
                timeout: timeout.unwrap_or_else(|| match &action {
                    // A polling check waits like a wait step.
                    StepAction::Check(c) if c.poll_interval.is_some() => DEFAULT_WAIT_TIMEOUT,
                    _ => default_timeout(step.type_),
                }),
                retries,
                action,
            });
        }
    }
    validated
}

/// Checks one step, at `loc`, given the outputs of the steps before it.
struct StepChecker<'a> {
    out: &'a mut Vec<Problem>,
    loc: String,
    produced: &'a BTreeSet<String>,
    known_clusters: Option<&'a BTreeSet<String>>,
}

impl StepChecker<'_> {
    /// A webhook and templated body at `loc` (a notify step's, or a plan notification's).
    fn notify(
        &mut self,
        loc: &str,
        webhook: &lifeboat_api::WebhookTarget,
        body: &Value,
        required: bool,
    ) -> Option<NotifyAction> {
        let url_ok = self.secret_ref(&format!("{loc}.webhook.urlFrom"), &webhook.url_from);
        let token_ok = webhook
            .token_from
            .as_ref()
            .is_none_or(|t| self.secret_ref(&format!("{loc}.webhook.tokenFrom"), t));
        if !body.is_object() && !body.is_array() {
            self.problem(
                format!("{loc}.body"),
                "must be a JSON object or array (the document sent)",
            );
        }
        let body = self.leaves(&format!("{loc}.body"), body);
        (url_ok && token_ok).then_some(())?;
        Some(NotifyAction {
            url_from: webhook.url_from.clone(),
            token_from: webhook.token_from.clone(),
            body: body?,
            required,
        })
    }

    /// A Secret key reference: both parts must be valid Kubernetes names.
    fn secret_ref(&mut self, loc: &str, r: &lifeboat_api::SecretKeyRef) -> bool {
        let before = self.out.len();
        if !is_dns_subdomain(&r.name) {
            self.problem(
                format!("{loc}.name"),
                format!("{:?} is not a valid Secret name", r.name),
            );
        }
        let key_ok = !r.key.is_empty()
            && r.key.len() <= 253
            && r.key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !key_ok {
            self.problem(
                format!("{loc}.key"),
                format!("{:?} is not a valid Secret key", r.key),
            );
        }
        self.out.len() == before
    }

    fn problem(&mut self, loc: impl Into<String>, message: impl Into<String>) {
        self.out.push(Problem::new(loc, message));
    }

    /// The fields every step has: the step's own timeout (if set) and its retries.
    #[allow(clippy::type_complexity)]
    fn common(
        &mut self,
        step: &Step,
        opts: &ValidationOptions,
    ) -> Option<(Option<std::time::Duration>, Retries)> {
        let before = self.out.len();
        let loc = self.loc.clone();
        if let Some(c) = &step.cluster {
            if c.trim().is_empty() {
                self.problem(
                    format!("{loc}.cluster"),
                    "empty cluster name (omit it for the local cluster)",
                );
            } else if let Some(known) = opts.known_clusters
                && !known.contains(c)
            {
                self.problem(
                    format!("{loc}.cluster"),
                    format!("unknown cluster {c:?} (registered: {})", known_list(known)),
                );
            }
        }
        let timeout = step
            .timeout
            .as_deref()
            .and_then(|t| check_duration(self.out, &format!("{loc}.timeout"), t, true));
        let mut retries = Retries {
            limit: 0,
            backoff: DEFAULT_BACKOFF,
        };
        if let Some(r) = &step.retries {
            if r.limit > MAX_RETRIES {
                self.problem(
                    format!("{loc}.retries.limit"),
                    format!("{} is more than the maximum of {MAX_RETRIES}", r.limit),
                );
            }
            retries.limit = r.limit;
            if let Some(b) = &r.backoff
                && let Some(b) =
                    check_duration(self.out, &format!("{loc}.retries.backoff"), b, false)
            {
                retries.backoff = b;
            }
        }
        (self.out.len() == before).then_some((timeout, retries))
    }

    /// The step's body, which must be the one its `type` names, and only that one.
    fn action(&mut self, step: &Step) -> Option<StepAction> {
        let loc = self.loc.clone();
        let present = [
            (StepType::ReadField, step.read_field.is_some()),
            (StepType::Patch, step.patch.is_some()),
            (StepType::Job, step.job.is_some()),
            (StepType::Wait, step.wait.is_some()),
            (StepType::Check, step.check.is_some()),
            (StepType::Approval, step.approval.is_some()),
            (StepType::Notify, step.notify.is_some()),
        ];
        for (t, is_present) in present {
            if t != step.type_ && is_present {
                self.problem(
                    format!("{loc}.{t}"),
                    format!("not allowed in a step of type {}", step.type_),
                );
            }
        }
        let before = self.out.len();
        let action = match step.type_ {
            StepType::ReadField => step.read_field.as_ref().map(|r| {
                let l = format!("{loc}.readField");
                let target = self.target(&l, &r.target);
                let field_path = self.field_path(format!("{l}.fieldPath"), &r.field_path);
                let output_key_ok = self.required(format!("{l}.outputKey"), &r.output_key);
                Some(StepAction::ReadField(ReadFieldAction {
                    target: target?,
                    field_path: field_path?,
                    output_key: output_key_ok.then(|| r.output_key.clone())?,
                }))
            }),
            StepType::Patch => step.patch.as_ref().map(|p| {
                let l = format!("{loc}.patch");
                let target = self.target(&l, &p.target);
                let fp_loc = format!("{l}.override.fieldPath");
                let field_path = self.field_path(fp_loc.clone(), &p.override_.field_path);
                if let Some(fp) = &field_path
                    && !matches!(fp.segments().first(), Some(Segment::Key(_)))
                {
                    self.problem(fp_loc, "a patched path must start with an object key");
                }
                let raw_loc = format!("{l}.override.value.raw");
                let value = self.leaves(&raw_loc, &p.override_.value.raw);
                let patch_type = p.effective_patch_type();
                if patch_type == PatchType::StrategicMergePatch
                    && !p.target.api_version.is_empty()
                    && !is_builtin_api_version(&p.target.api_version)
                {
                    self.problem(
                        format!("{l}.patchType"),
                        format!(
                            "strategic merge patch works only for built-in kinds, not {}; use application/merge-patch+json or application/json-patch+json",
                            p.target.api_version
                        ),
                    );
                }
                if patch_type != PatchType::JsonPatch && merge_null(&p.override_.value.raw) {
                    self.problem(
                        raw_loc,
                        format!("null cannot be set with {} (null deletes fields in a merge patch); use application/json-patch+json", patch_type.content_type()),
                    );
                }
                Some(StepAction::Patch(PatchAction {
                    target: target?,
                    field_path: field_path?,
                    value: value?,
                    patch_type,
                }))
            }),
            StepType::Job => step.job.as_ref().map(|j| {
                let l = format!("{loc}.job");
                self.job_template(&format!("{l}.template"), &j.template);
                let template = self.leaves(&format!("{l}.template"), &j.template);
                let namespace = self.optional_template(&format!("{l}.namespace"), &j.namespace);
                if j.backoff_limit.is_some_and(|b| b < 0) {
                    self.problem(format!("{l}.backoffLimit"), "must not be negative");
                }
                Some(StepAction::Job(JobAction {
                    template: template?,
                    namespace: namespace?,
                    backoff_limit: j.backoff_limit.unwrap_or(0),
                    labels: j.labels.clone(),
                }))
            }),
            StepType::Wait => step.wait.as_ref().map(|w| {
                let l = format!("{loc}.wait");
                let target = self.target(&l, &w.target);
                let field_path = self.field_path(format!("{l}.fieldPath"), &w.field_path);
                // `None` when the value is missing or does not compile.
                let expected: Option<Option<JsonTemplate>> = match (&w.condition, &w.value) {
                    (WaitCondition::Equals | WaitCondition::NotEquals, None) => {
                        self.problem(
                            format!("{l}.value"),
                            format!("required for condition {:?}", w.condition),
                        );
                        None
                    }
                    (_, Some(v)) => self.leaves(&format!("{l}.value"), v).map(Some),
                    (WaitCondition::Exists, None) => Some(None),
                };
                Some(StepAction::Wait(WaitAction {
                    target: target?,
                    field_path: field_path?,
                    condition: w.condition,
                    expected: expected?,
                }))
            }),
            StepType::Check => step
                .check
                .as_ref()
                .map(|c| self.check(&format!("{loc}.check"), c)),
            StepType::Approval => step.approval.as_ref().map(|a| {
                let required = a.required_approvals.unwrap_or(1);
                if required == 0 || required > MAX_APPROVERS {
                    self.problem(
                        format!("{loc}.approval.requiredApprovals"),
                        format!("must be between 1 and {MAX_APPROVERS}"),
                    );
                }
                Some(StepAction::Approval(ApprovalAction {
                    message: a.message.clone(),
                    required,
                    on_timeout: a.on_timeout.unwrap_or(ApprovalDecision::Reject),
                }))
            }),
            StepType::Notify => step.notify.as_ref().map(|n| {
                let l = format!("{loc}.notify");
                self.notify(&l, &n.webhook, &n.body, n.required.unwrap_or(false))
                    .map(StepAction::Notify)
            }),
        };
        match action {
            None => {
                self.problem(
                    format!("{loc}.{}", step.type_),
                    format!("required for a step of type {}", step.type_),
                );
                None
            }
            Some(a) if self.out.len() == before => a,
            Some(_) => None,
        }
    }

    /// A check step's assertions.
    fn check(&mut self, loc: &str, c: &CheckStep) -> Option<StepAction> {
        let before = self.out.len();
        if c.assertions.is_empty() {
            self.problem(
                format!("{loc}.assertions"),
                "a check needs at least one assertion",
            );
        }
        let poll_interval = c
            .poll_interval
            .as_deref()
            .and_then(|p| check_duration(self.out, &format!("{loc}.pollInterval"), p, true));
        let mut assertions = Vec::with_capacity(c.assertions.len());
        for (i, a) in c.assertions.iter().enumerate() {
            let l = format!("{loc}.assertions[{i}]");
            let has_probe = a.probe.field.is_some()
                || a.probe.cluster.is_some()
                || a.probe.alert_firing.is_some();
            match &a.quorum {
                Some(q) => {
                    if has_probe {
                        self.problem(
                            l.clone(),
                            "a quorum assertion has only `quorum` (and `name`); put the probes in quorum.of",
                        );
                    }
                    let ql = format!("{l}.quorum");
                    if q.of.is_empty() {
                        self.problem(format!("{ql}.of"), "a quorum needs at least one probe");
                    }
                    if q.required == 0 || q.required as usize > q.of.len() {
                        self.problem(
                            format!("{ql}.required"),
                            format!(
                                "must be between 1 and the number of probes ({})",
                                q.of.len()
                            ),
                        );
                    }
                    let of: Vec<Option<ProbeCheck>> =
                        q.of.iter()
                            .enumerate()
                            .map(|(j, p)| self.probe(&format!("{ql}.of[{j}]"), p))
                            .collect();
                    let names: Vec<&str> = of.iter().flatten().map(|p| p.name.as_str()).collect();
                    let name = a
                        .probe
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{} of: {}", q.required, names.join("; ")));
                    if let Some(of) = of.into_iter().collect::<Option<Vec<_>>>() {
                        assertions.push(CheckAssertion::Quorum {
                            name,
                            required: q.required,
                            of,
                        });
                    }
                }
                None => {
                    if let Some(p) = self.probe(&l, &a.probe) {
                        assertions.push(CheckAssertion::Probe(p));
                    }
                }
            }
        }
        (self.out.len() == before).then_some(StepAction::Check(CheckAction {
            assertions,
            poll_interval,
        }))
    }

    /// One probe: exactly one of `field`, `cluster` and `alertFiring`.
    fn probe(&mut self, loc: &str, p: &Probe) -> Option<ProbeCheck> {
        let given = [
            p.field.is_some(),
            p.cluster.is_some(),
            p.alert_firing.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        if given != 1 {
            self.problem(
                loc,
                "needs exactly one of `field`, `cluster` and `alertFiring`",
            );
            return None;
        }
        let (kind, description) = if let Some(f) = &p.field {
            let l = format!("{loc}.field");
            let field = self.field_check(&l, f)?;
            let expected = f
                .value
                .as_ref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            let description = format!(
                "{} of {} {}{}: {:?}{expected}",
                f.field_path,
                f.target.resource,
                f.target.name,
                f.cluster
                    .as_ref()
                    .map(|c| format!(" on cluster {c:?}"))
                    .unwrap_or_default(),
                f.operator
            );
            (ProbeKind::Field(Box::new(field)), description)
        } else if let Some(c) = &p.cluster {
            let l = format!("{loc}.cluster.name");
            if let Some(name) = &c.name {
                self.known_cluster(&l, name);
            }
            let description = format!(
                "{} is {:?}",
                c.name
                    .as_ref()
                    .map_or("the local cluster".to_string(), |n| format!(
                        "cluster {n:?}"
                    )),
                c.state
            );
            (
                ProbeKind::Cluster {
                    cluster: c.name.clone(),
                    state: c.state,
                },
                description,
            )
        } else {
            let firing = p.alert_firing.unwrap_or(true);
            let description = if firing {
                "the alert is still firing"
            } else {
                "the alert has resolved"
            };
            (ProbeKind::AlertFiring(firing), description.to_string())
        };
        Some(ProbeCheck {
            name: p.name.clone().unwrap_or(description),
            kind,
        })
    }

    fn field_check(&mut self, loc: &str, f: &FieldProbe) -> Option<FieldCheck> {
        let before = self.out.len();
        let target = self.target(loc, &f.target);
        if let Some(c) = &f.cluster {
            self.known_cluster(&format!("{loc}.cluster"), c);
        }
        let field_path = self.field_path(format!("{loc}.fieldPath"), &f.field_path);
        let needs_value = !matches!(f.operator, Operator::Exists | Operator::NotExists);
        let expected = match (&f.value, needs_value) {
            (None, true) => {
                self.problem(
                    format!("{loc}.value"),
                    format!("required for operator {:?}", f.operator),
                );
                None
            }
            (Some(_), false) => {
                self.problem(
                    format!("{loc}.value"),
                    format!("not used by operator {:?}; remove it", f.operator),
                );
                None
            }
            (Some(v), true) => self.leaves(&format!("{loc}.value"), v),
            (None, false) => None,
        };
        match (f.operator.is_ordering(), f.compare_as) {
            (true, None) => self.problem(
                format!("{loc}.compareAs"),
                format!(
                    "required for operator {:?}: Number, Duration or Quantity (the same text means different things: 1m is a minute or a thousandth)",
                    f.operator
                ),
            ),
            (false, Some(_)) => self.problem(
                format!("{loc}.compareAs"),
                format!("only ordering operators compare as a kind, not {:?}", f.operator),
            ),
            (true, Some(kind)) => {
                // A literal value must already be of the kind: a typo fails now, not
                // during the outage.
                if let Some(v) = &f.value
                    && !v.as_str().is_some_and(|s| s.contains("{{"))
                    && let Err(m) = crate::check::scalar(kind, v)
                {
                    self.problem(format!("{loc}.value"), m);
                }
            }
            (false, None) => {}
        }
        if self.out.len() != before {
            return None;
        }
        Some(FieldCheck {
            target: target?,
            cluster: f.cluster.clone(),
            field_path: field_path?,
            operator: f.operator,
            expected,
            compare_as: f.compare_as,
        })
    }

    /// A cluster name that must be registered (when the registered clusters are known).
    fn known_cluster(&mut self, loc: &str, name: &str) {
        if name.trim().is_empty() {
            self.problem(loc, "empty cluster name (omit it for the local cluster)");
        } else if let Some(known) = self.known_clusters
            && !known.contains(name)
        {
            self.problem(
                loc,
                format!(
                    "unknown cluster {name:?} (registered: {})",
                    known_list(known)
                ),
            );
        }
    }

    /// A required string: not empty.
    fn required(&mut self, loc: String, s: &str) -> bool {
        if s.trim().is_empty() {
            self.problem(loc, "required");
            false
        } else {
            true
        }
    }

    fn field_path(&mut self, loc: String, s: &str) -> Option<FieldPath> {
        if !self.required(loc.clone(), s) {
            return None;
        }
        FieldPath::parse(s)
            .map_err(|e| self.problem(loc, e.to_string()))
            .ok()
    }

    /// A string that may hold a template: it parses, reads only data a run has, and uses
    /// `.Values.x` only after an earlier step outputs `x`.
    fn template(&mut self, loc: &str, s: &str) -> Option<Template> {
        match Template::parse(s) {
            Err(e) => {
                self.problem(loc, e.to_string());
                None
            }
            Ok(t) => self.references(loc, &t).then_some(t),
        }
    }

    fn optional_template(&mut self, loc: &str, s: &Option<String>) -> Option<Option<Template>> {
        match s {
            None => Some(None),
            Some(s) => self.template(loc, s).map(Some),
        }
    }

    /// Whether every reference of `t` can resolve at run time; problems otherwise.
    fn references(&mut self, loc: &str, t: &Template) -> bool {
        let before = self.out.len();
        for data in t.unknown_data() {
            self.problem(
                loc,
                format!(
                    "unknown template data {data}: a run has .Values.<key>, .Alert.Name, .Alert.Labels.<key>, .Alert.Annotations.<key>, .Run.Name and .Run.Namespace"
                ),
            );
        }
        for key in t.required_values() {
            if !self.produced.contains(&key) {
                let message = format!(
                    "uses .Values.{key} before any earlier step outputs {key:?} (outputs so far: {})",
                    known_list(self.produced)
                );
                self.problem(loc, message);
            }
        }
        self.out.len() == before
    }

    /// Every string leaf of a JSON value, as a template.
    fn leaves(&mut self, loc: &str, v: &Value) -> Option<JsonTemplate> {
        let leaf_loc = |location: &str| {
            if location.is_empty() {
                loc.to_string()
            } else if location.starts_with('[') {
                format!("{loc}{location}")
            } else {
                format!("{loc}.{location}")
            }
        };
        match JsonTemplate::compile(v) {
            Err(errors) => {
                for e in errors {
                    self.problem(leaf_loc(&e.location), e.error.to_string());
                }
                None
            }
            Ok(compiled) => {
                let mut ok = true;
                compiled.for_each_template(&mut |path, t| {
                    ok &= self.references(&leaf_loc(&location_of(path)), t);
                });
                ok.then_some(compiled)
            }
        }
    }

    fn target(&mut self, loc: &str, t: &StepTarget) -> Option<Target> {
        let before = self.out.len();
        let version_loc = format!("{loc}.apiVersion");
        if self.required(version_loc.clone(), &t.api_version)
            && !is_api_version(t.api_version.trim())
        {
            self.problem(
                version_loc,
                format!(
                    "{:?} is not an API version: expected VERSION for the core group (v1) or GROUP/VERSION (apps/v1, pgv2.percona.com/v2)",
                    t.api_version
                ),
            );
        }
        self.required(format!("{loc}.resource"), &t.resource);
        let name = if self.required(format!("{loc}.name"), &t.name) {
            self.template(&format!("{loc}.name"), &t.name)
        } else {
            None
        };
        let namespace = self.optional_template(&format!("{loc}.namespace"), &t.namespace);
        if self.out.len() != before {
            return None;
        }
        Some(Target {
            api_version: t.api_version.trim().to_string(),
            resource: t.resource.clone(),
            namespace: namespace?,
            name: name?,
        })
    }

    /// A job's pod template has a non-empty `spec.containers`, each with a name and image.
    fn job_template(&mut self, loc: &str, t: &Value) {
        let Value::Object(_) = t else {
            self.problem(loc, "must be a PodTemplateSpec object");
            return;
        };
        let containers_loc = format!("{loc}.spec.containers");
        match t.pointer("/spec/containers") {
            Some(Value::Array(cs)) if !cs.is_empty() => {
                for (i, c) in cs.iter().enumerate() {
                    let cl = format!("{containers_loc}[{i}]");
                    let Value::Object(_) = c else {
                        self.problem(cl, "must be an object");
                        continue;
                    };
                    for field in ["name", "image"] {
                        match c.get(field) {
                            Some(Value::String(s)) if !s.trim().is_empty() => {}
                            _ => self.problem(format!("{cl}.{field}"), "required"),
                        }
                    }
                }
            }
            Some(Value::Array(_)) => self.problem(containers_loc, "must not be empty"),
            Some(_) => self.problem(containers_loc, "must be a list of containers"),
            None => self.problem(
                containers_loc,
                "required: a job needs at least one container",
            ),
        }
    }
}

/// `v1`, `apps/v1`, `pgv2.percona.com/v2`, `batch/v1beta1`: a version (`v` + digits, then
/// optionally `alpha` or `beta` + digits), after a group that is a DNS subdomain.
/// Hand-written: the engine has no regex dependency for two small grammars.
fn is_api_version(s: &str) -> bool {
    fn is_version(v: &str) -> bool {
        let Some(rest) = v.strip_prefix('v') else {
            return false;
        };
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 || rest.starts_with('0') {
            return false;
        }
        let tail = &rest[digits..];
        if tail.is_empty() {
            return true;
        }
        let n = tail
            .strip_prefix("alpha")
            .or_else(|| tail.strip_prefix("beta"));
        n.is_some_and(|n| {
            !n.is_empty() && !n.starts_with('0') && n.chars().all(|c| c.is_ascii_digit())
        })
    }
    match s.split_once('/') {
        None => is_version(s),
        Some((group, version)) => is_dns_subdomain(group) && is_version(version),
    }
}

/// Whether a merge patch value holds `null` (which a merge patch reads as "delete").
fn merge_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().any(merge_null),
        _ => false,
    }
}

/// Whether `s` is a DNS subdomain (RFC 1123), as Kubernetes requires of most object names.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        for ok in [
            "v1",
            "apps/v1",
            "batch/v1beta1",
            "pgv2.percona.com/v2",
            "x.io/v10alpha2",
        ] {
            assert!(is_api_version(ok), "{ok}");
        }
        for bad in [
            "",
            "V1",
            "1",
            "v",
            "v0",
            "apps/",
            "/v1",
            "apps/v1/x",
            "Apps/v1",
            "apps/v1beta",
            "apps/v1gamma1",
            "a..b/v1",
            "-a/v1",
            "apps v1",
        ] {
            assert!(!is_api_version(bad), "{bad:?}");
        }
    }
}
