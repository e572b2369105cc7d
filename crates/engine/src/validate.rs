//! Validation of plans and runs: every problem is reported, each with its location
//! (`spec.steps[1].patch.override.fieldPath`), so an `Invalid` plan says exactly what to fix.
//!
//! Rules:
//! - `spec.alertLabels` must not be empty (an empty label set would match nothing), and a
//!   plan needs at least one step;
//! - each step carries the body named by its `type` and no other body;
//! - required strings are non-empty: `apiVersion`, `resource`, `name`, `fieldPath`,
//!   `outputKey`; every `fieldPath` parses;
//! - every string that may hold a template parses (`name`, `namespace`, string leaves of
//!   `value.raw`, of a job `template`, of a wait `value`), and uses `.Values.x` only after
//!   an earlier `readField` step has `outputKey: x` (a value only given to `default` may be
//!   absent);
//! - strategic merge patch only on built-in kinds; merge patches cannot carry `null`;
//! - durations (`timeout`, `retries.backoff`, `cooldown`) parse; a timeout is positive;
//! - `retries.limit` is at most [`MAX_RETRIES`]: a larger number is rejected, because
//!   retrying a failing recovery step for many minutes during an outage hides the failure
//!   instead of reporting it;
//! - a step's `cluster` is a registered cluster (when the caller knows the clusters);
//! - a job template has a non-empty `spec.containers` list, each with a `name` and `image`;
//! - a wait step with `Equals` / `NotEquals` has a `value`;
//! - `serviceAccountName`, when given, is not empty.
//!
//! Two `readField` steps may write the same `outputKey`: the later value wins, which is how
//! a plan re-reads a field after a change.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use lifeboat_api::{
    GoDuration, PatchType, ReceivedAlert, RecoveryPlan, RecoveryPlanSpec, RecoveryRun, Step,
    StepType, WaitCondition,
};
use serde::Deserialize;
use serde_json::Value;

use crate::fieldpath::{FieldPath, Segment};
use crate::patch::is_builtin_api_version;
use crate::template::{Template, for_each_string_leaf, location_of};

/// Largest accepted `retries.limit`.
pub const MAX_RETRIES: u32 = 10;

/// One problem found by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: a field path in the document (`spec.steps[1].patch.override.fieldPath`).
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn new(location: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            location: location.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.location, self.message)
        }
    }
}

/// What the validator knows about the environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationOptions<'a> {
    /// Registered cluster names; `None` skips the cluster check (e.g. offline validation).
    pub known_clusters: Option<&'a BTreeSet<String>>,
}

/// Every problem of a plan spec.
pub fn validate_plan(spec: &RecoveryPlanSpec, opts: &ValidationOptions) -> Vec<Problem> {
    let mut out = Vec::new();
    if spec.alert_labels.is_empty() {
        out.push(Problem::new(
            "spec.alertLabels",
            "must not be empty: an empty label set matches no alert",
        ));
    }
    for (k, _) in spec.alert_labels.iter().filter(|(k, _)| k.is_empty()) {
        out.push(Problem::new(
            format!("spec.alertLabels[{k:?}]"),
            "empty label name",
        ));
    }
    if let Some(c) = &spec.cooldown {
        check_duration(&mut out, "spec.cooldown", c, false);
    }
    if spec
        .service_account_name
        .as_ref()
        .is_some_and(|s| s.trim().is_empty())
    {
        out.push(Problem::new(
            "spec.serviceAccountName",
            "empty (omit it to run with lifeboat's own account)",
        ));
    }
    if spec.steps.is_empty() {
        out.push(Problem::new("spec.steps", "a plan needs at least one step"));
    }
    validate_steps(&mut out, "spec.steps", &spec.steps, opts);
    out
}

/// Every problem of a run's steps (for runs written by hand).
pub fn validate_run_steps(steps: &[Step], opts: &ValidationOptions) -> Vec<Problem> {
    let mut out = Vec::new();
    if steps.is_empty() {
        out.push(Problem::new("spec.steps", "a run needs at least one step"));
    }
    validate_steps(&mut out, "spec.steps", steps, opts);
    out
}

fn check_duration(out: &mut Vec<Problem>, loc: &str, s: &str, positive: bool) {
    match s.parse::<GoDuration>().map(Duration::from) {
        Ok(d) if positive && d.is_zero() => {
            out.push(Problem::new(loc, "must be greater than zero"))
        }
        Ok(_) => {}
        Err(e) => out.push(Problem::new(loc, e)),
    }
}

fn check_required(out: &mut Vec<Problem>, loc: String, s: &str) -> bool {
    if s.trim().is_empty() {
        out.push(Problem::new(loc, "required"));
        false
    } else {
        true
    }
}

fn check_field_path(out: &mut Vec<Problem>, loc: String, s: &str) -> Option<FieldPath> {
    if !check_required(out, loc.clone(), s) {
        return None;
    }
    match FieldPath::parse(s) {
        Ok(p) => Some(p),
        Err(e) => {
            out.push(Problem::new(loc, e.to_string()));
            None
        }
    }
}

fn known_list(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none yet".to_string()
    } else {
        set.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Check one string that may hold a template.
fn check_template(out: &mut Vec<Problem>, loc: &str, s: &str, produced: &BTreeSet<String>) {
    if !s.contains("{{") {
        return;
    }
    match Template::parse(s) {
        Err(e) => out.push(Problem::new(loc, e.to_string())),
        Ok(t) => {
            for data in t.unknown_data() {
                out.push(Problem::new(
                    loc,
                    format!(
                        "unknown template data {data}: a run has .Values.<key>, .Alert.Name, .Alert.Labels.<key>, .Alert.Annotations.<key>, .Run.Name and .Run.Namespace"
                    ),
                ));
            }
            for key in t.required_values() {
                if !produced.contains(&key) {
                    out.push(Problem::new(
                        loc,
                        format!(
                            "uses .Values.{key} before any earlier step outputs {key:?} (outputs so far: {})",
                            known_list(produced)
                        ),
                    ));
                }
            }
        }
    }
}

/// Check every string leaf of a JSON value as a template.
fn check_leaves(out: &mut Vec<Problem>, loc: &str, v: &Value, produced: &BTreeSet<String>) {
    for_each_string_leaf(v, &mut |path: &[Segment], s: &str| {
        let l = if path.is_empty() {
            loc.to_string()
        } else {
            let rest = location_of(path);
            if rest.starts_with('[') {
                format!("{loc}{rest}")
            } else {
                format!("{loc}.{rest}")
            }
        };
        check_template(out, &l, s, produced);
    });
}

fn check_target(
    out: &mut Vec<Problem>,
    loc: &str,
    t: &lifeboat_api::ObjectRef,
    produced: &BTreeSet<String>,
) {
    check_required(out, format!("{loc}.apiVersion"), &t.api_version);
    if !t.api_version.trim().is_empty()
        && !t.api_version.contains("{{")
        && !is_api_version(t.api_version.trim())
    {
        out.push(Problem::new(
            format!("{loc}.apiVersion"),
            format!(
                "{:?} is not an API version: expected VERSION for the core group (v1) or GROUP/VERSION (apps/v1, pgv2.percona.com/v2)",
                t.api_version
            ),
        ));
    }
    check_required(out, format!("{loc}.resource"), &t.resource);
    if check_required(out, format!("{loc}.name"), &t.name) {
        check_template(out, &format!("{loc}.name"), &t.name, produced);
    }
    if let Some(ns) = &t.namespace {
        check_template(out, &format!("{loc}.namespace"), ns, produced);
    }
}

const BODIES: [StepType; 4] = [
    StepType::ReadField,
    StepType::Patch,
    StepType::Job,
    StepType::Wait,
];

fn body_present(step: &Step, t: StepType) -> bool {
    match t {
        StepType::ReadField => step.read_field.is_some(),
        StepType::Patch => step.patch.is_some(),
        StepType::Job => step.job.is_some(),
        StepType::Wait => step.wait.is_some(),
    }
}

fn validate_steps(out: &mut Vec<Problem>, base: &str, steps: &[Step], opts: &ValidationOptions) {
    let mut produced: BTreeSet<String> = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let loc = format!("{base}[{i}]");
        for t in BODIES {
            if t != step.type_ && body_present(step, t) {
                out.push(Problem::new(
                    format!("{loc}.{t}"),
                    format!("not allowed in a step of type {}", step.type_),
                ));
            }
        }
        if !body_present(step, step.type_) {
            out.push(Problem::new(
                format!("{loc}.{}", step.type_),
                format!("required for a step of type {}", step.type_),
            ));
        }
        if let Some(c) = &step.cluster {
            if c.trim().is_empty() {
                out.push(Problem::new(
                    format!("{loc}.cluster"),
                    "empty cluster name (omit it for the local cluster)",
                ));
            } else if let Some(known) = opts.known_clusters
                && !known.contains(c)
            {
                out.push(Problem::new(
                    format!("{loc}.cluster"),
                    format!("unknown cluster {c:?} (registered: {})", known_list(known)),
                ));
            }
        }
        if let Some(t) = &step.timeout {
            check_duration(out, &format!("{loc}.timeout"), t, true);
        }
        if let Some(r) = &step.retries {
            if r.limit > MAX_RETRIES {
                out.push(Problem::new(
                    format!("{loc}.retries.limit"),
                    format!("{} is more than the maximum of {MAX_RETRIES}", r.limit),
                ));
            }
            if let Some(b) = &r.backoff {
                check_duration(out, &format!("{loc}.retries.backoff"), b, false);
            }
        }
        match step.type_ {
            StepType::ReadField => {
                if let Some(r) = &step.read_field {
                    let l = format!("{loc}.readField");
                    check_target(out, &l, &r.target, &produced);
                    check_field_path(out, format!("{l}.fieldPath"), &r.field_path);
                    if check_required(out, format!("{l}.outputKey"), &r.output_key) {
                        produced.insert(r.output_key.clone());
                    }
                }
            }
            StepType::Patch => {
                if let Some(p) = &step.patch {
                    let l = format!("{loc}.patch");
                    check_target(out, &l, &p.target, &produced);
                    let fp_loc = format!("{l}.override.fieldPath");
                    if let Some(fp) = check_field_path(out, fp_loc.clone(), &p.override_.field_path)
                        && !matches!(fp.segments().first(), Some(Segment::Key(_)))
                    {
                        out.push(Problem::new(
                            fp_loc,
                            "a patched path must start with an object key",
                        ));
                    }
                    let raw_loc = format!("{l}.override.value.raw");
                    check_leaves(out, &raw_loc, &p.override_.value.raw, &produced);
                    let pt = p.effective_patch_type();
                    if pt == PatchType::StrategicMergePatch
                        && !p.target.api_version.is_empty()
                        && !is_builtin_api_version(&p.target.api_version)
                    {
                        out.push(Problem::new(
                            format!("{l}.patchType"),
                            format!(
                                "strategic merge patch works only for built-in kinds, not {}; use application/merge-patch+json or application/json-patch+json",
                                p.target.api_version
                            ),
                        ));
                    }
                    if pt != PatchType::JsonPatch && merge_null(&p.override_.value.raw) {
                        out.push(Problem::new(
                            raw_loc,
                            format!("null cannot be set with {} (null deletes fields in a merge patch); use application/json-patch+json", pt.content_type()),
                        ));
                    }
                }
            }
            StepType::Job => {
                if let Some(j) = &step.job {
                    let l = format!("{loc}.job");
                    check_job_template(out, &format!("{l}.template"), &j.template);
                    check_leaves(out, &format!("{l}.template"), &j.template, &produced);
                    if let Some(ns) = &j.namespace {
                        check_template(out, &format!("{l}.namespace"), ns, &produced);
                    }
                    if j.backoff_limit.is_some_and(|b| b < 0) {
                        out.push(Problem::new(
                            format!("{l}.backoffLimit"),
                            "must not be negative",
                        ));
                    }
                }
            }
            StepType::Wait => {
                if let Some(w) = &step.wait {
                    let l = format!("{loc}.wait");
                    check_target(out, &l, &w.target, &produced);
                    check_field_path(out, format!("{l}.fieldPath"), &w.field_path);
                    match (&w.condition, &w.value) {
                        (WaitCondition::Equals | WaitCondition::NotEquals, None) => {
                            out.push(Problem::new(
                                format!("{l}.value"),
                                format!("required for condition {:?}", w.condition),
                            ))
                        }
                        (_, Some(v)) => check_leaves(out, &format!("{l}.value"), v, &produced),
                        _ => {}
                    }
                }
            }
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
    fn is_group(g: &str) -> bool {
        !g.is_empty()
            && g.len() <= 253
            && g.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    }
    match s.split_once('/') {
        None => is_version(s),
        Some((group, version)) => is_group(group) && is_version(version),
    }
}

fn merge_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().any(merge_null),
        _ => false,
    }
}

fn check_job_template(out: &mut Vec<Problem>, loc: &str, t: &Value) {
    let Value::Object(_) = t else {
        out.push(Problem::new(loc, "must be a PodTemplateSpec object"));
        return;
    };
    let containers_loc = format!("{loc}.spec.containers");
    match t.pointer("/spec/containers") {
        Some(Value::Array(cs)) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                let cl = format!("{containers_loc}[{i}]");
                let Value::Object(_) = c else {
                    out.push(Problem::new(cl, "must be an object"));
                    continue;
                };
                for field in ["name", "image"] {
                    match c.get(field) {
                        Some(Value::String(s)) if !s.trim().is_empty() => {}
                        _ => out.push(Problem::new(format!("{cl}.{field}"), "required")),
                    }
                }
            }
        }
        Some(Value::Array(_)) => out.push(Problem::new(containers_loc, "must not be empty")),
        Some(_) => out.push(Problem::new(containers_loc, "must be a list of containers")),
        None => out.push(Problem::new(
            containers_loc,
            "required: a job needs at least one container",
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Offline validation of YAML files (`lifeboat validate`)
// ---------------------------------------------------------------------------------------

/// The result of checking one YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentReport {
    /// Position of the document in the stream, from 0 (empty documents count too).
    pub index: usize,
    /// `kind` of the document, when it has one.
    pub kind: Option<String>,
    /// `metadata.name`, when present.
    pub name: Option<String>,
    /// Every problem; empty for a valid document.
    pub problems: Vec<Problem>,
}

impl DocumentReport {
    /// Whether the document has no problems.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check a multi-document YAML stream of lifeboat resources (RecoveryPlan, RecoveryRun,
/// ReceivedAlert): YAML syntax, unknown fields and wrong types, then validation. Empty
/// documents are skipped. After a YAML syntax error the rest of the stream is not read.
pub fn check_documents(yaml: &str) -> Vec<DocumentReport> {
    check_documents_with(yaml, &ValidationOptions::default())
}

/// [`check_documents`] with validation options (e.g. the registered clusters).
pub fn check_documents_with(yaml: &str, opts: &ValidationOptions) -> Vec<DocumentReport> {
    let mut reports = Vec::new();
    let mut docs: Vec<Value> = Vec::new();
    for (index, de) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        match Value::deserialize(de) {
            Ok(v) => docs.push(v),
            Err(e) => {
                reports.push(DocumentReport {
                    index,
                    kind: None,
                    name: None,
                    problems: vec![Problem::new("", format!("YAML error: {e}"))],
                });
                break;
            }
        }
    }
    let typed_stream = serde_yaml::Deserializer::from_str(yaml);
    for ((index, doc), de) in docs.iter().enumerate().zip(typed_stream) {
        if doc.is_null() {
            continue;
        }
        let kind = doc.get("kind").and_then(Value::as_str).map(str::to_string);
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut problems = Vec::new();
        if !doc.is_object() {
            problems.push(Problem::new(
                "",
                "a document must be a mapping with apiVersion and kind",
            ));
        } else {
            match doc.get("apiVersion").and_then(Value::as_str) {
                Some(lifeboat_api::API_VERSION) => {}
                Some(other) => problems.push(Problem::new(
                    "apiVersion",
                    format!("expected {}, got {other:?}", lifeboat_api::API_VERSION),
                )),
                None => problems.push(Problem::new("apiVersion", "required")),
            }
            match kind.as_deref() {
                Some("RecoveryPlan") => {
                    if let Some(plan) = typed::<RecoveryPlan>(de, doc, &mut problems) {
                        problems.extend(validate_plan(&plan.spec, opts));
                    }
                }
                Some("RecoveryRun") => {
                    if let Some(run) = typed::<RecoveryRun>(de, doc, &mut problems) {
                        problems.extend(validate_run_steps(&run.spec.steps, opts));
                    }
                }
                Some("ReceivedAlert") => {
                    if let Some(alert) = typed::<ReceivedAlert>(de, doc, &mut problems)
                        && alert.spec.labels.is_empty()
                    {
                        problems.push(Problem::new("spec.labels", "must not be empty"));
                    }
                }
                Some(other) => problems.push(Problem::new(
                    "kind",
                    format!("unknown kind {other:?} (expected RecoveryPlan, RecoveryRun or ReceivedAlert)"),
                )),
                None => problems.push(Problem::new("kind", "required")),
            }
        }
        reports.push(DocumentReport {
            index,
            kind,
            name,
            problems,
        });
    }
    // A YAML error report (if any) goes after the documents read before it.
    reports.sort_by_key(|r| r.index);
    reports
}

/// Deserialize a document into its type (type errors carry the path and line), then report
/// fields the type does not know.
fn typed<T>(de: serde_yaml::Deserializer, doc: &Value, problems: &mut Vec<Problem>) -> Option<T>
where
    T: for<'de> Deserialize<'de> + serde::Serialize,
{
    let value = match T::deserialize(de) {
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem::new("", e.to_string()));
            return None;
        }
    };
    match serde_json::to_value(&value) {
        Ok(round) => {
            let mut unknown = Vec::new();
            unknown_fields(doc, &round, &mut Vec::new(), &mut unknown);
            for path in unknown {
                let field = match path.last() {
                    Some(Segment::Key(k)) => k.clone(),
                    _ => String::new(),
                };
                problems.push(Problem::new(
                    location_of(&path),
                    format!("unknown field {field:?}"),
                ));
            }
        }
        Err(e) => problems.push(Problem::new("", e.to_string())),
    }
    Some(value)
}

/// Paths of members present in `orig` but dropped by a typed round trip (`round`). Members
/// whose value is empty (`null`, `{}`, `[]`, `false`) are not reported: the types omit
/// empty defaults when serializing.
fn unknown_fields(
    orig: &Value,
    round: &Value,
    path: &mut Vec<Segment>,
    out: &mut Vec<Vec<Segment>>,
) {
    match (orig, round) {
        (Value::Object(om), Value::Object(rm)) => {
            for (k, ov) in om {
                path.push(Segment::Key(k.clone()));
                match rm.get(k) {
                    Some(rv) => unknown_fields(ov, rv, path, out),
                    None => {
                        let empty = match ov {
                            Value::Null | Value::Bool(false) => true,
                            Value::Object(m) => m.is_empty(),
                            Value::Array(a) => a.is_empty(),
                            _ => false,
                        };
                        if !empty {
                            out.push(path.clone());
                        }
                    }
                }
                path.pop();
            }
        }
        (Value::Array(oa), Value::Array(ra)) => {
            for (i, (ov, rv)) in oa.iter().zip(ra).enumerate() {
                path.push(Segment::Index(i));
                unknown_fields(ov, rv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
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

    #[test]
    fn problem_display() {
        assert_eq!(
            Problem::new("spec.steps[1].patch.override.fieldPath", "bad").to_string(),
            "spec.steps[1].patch.override.fieldPath: bad"
        );
    }

    #[test]
    fn check_documents_reports_each_document() {
        let yaml = r#"
apiVersion: recovery.elotl.co/v1alpha1
kind: ReceivedAlert
metadata: {name: a}
spec: {labels: {x: y}}
---
apiVersion: recovery.elotl.co/v1alpha1
kind: RecoveryPlan
metadata: {name: p}
spec:
  alertLabels: {x: y}
  stepz: [1]
  steps:
  - type: readField
    readField: {apiVersion: v1, resource: pods, name: p, fieldPath: "a[", outputKey: k}
---
apiVersion: recovery.elotl.co/v1alpha1
kind: Widget
---
apiVersion: recovery.elotl.co/v1alpha1
kind: RecoveryRun
metadata: {name: r}
spec:
  alertSpec: {name: a}
  steps:
  - type: wait
    retries: {limit: many}
    wait: {apiVersion: v1, resource: pods, name: p, fieldPath: a, condition: Exists}
"#;
        let reports = check_documents(yaml);
        assert_eq!(reports.len(), 4, "{reports:#?}");
        assert!(reports[0].is_valid(), "{:?}", reports[0].problems);
        let plan: Vec<String> = reports[1].problems.iter().map(|p| p.to_string()).collect();
        assert!(
            plan.iter()
                .any(|p| p == "spec.stepz: unknown field \"stepz\""),
            "{plan:?}"
        );
        assert!(
            plan.iter()
                .any(|p| p.starts_with("spec.steps[0].readField.fieldPath: invalid fieldPath")),
            "{plan:?}"
        );
        assert_eq!(reports[2].problems[0].location, "kind");
        let run = reports[3].problems[0].to_string();
        assert!(
            run.contains("spec.steps[0].retries.limit") && run.contains("line"),
            "{run}"
        );
        let broken = check_documents("a: [1\n");
        assert_eq!(broken.len(), 1);
        assert!(
            broken[0].problems[0].message.starts_with("YAML error"),
            "{broken:?}"
        );
    }
}
