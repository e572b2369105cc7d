//! Offline validation of YAML files (`lifeboat validate`): syntax, unknown fields and wrong
//! types first, then the same validation the controllers apply.

use lifeboat_api::{ReceivedAlert, RecoveryPlan, RecoveryRun};
use serde::Deserialize;
use serde_json::Value;

use super::{Problem, ValidationOptions, validate_plan, validate_run};
use crate::fieldpath::Segment;
use crate::template::location_of;

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
                    if let Some(plan) = typed::<RecoveryPlan>(de, doc, &mut problems)
                        && let Err(p) = validate_plan(&plan.spec, opts)
                    {
                        problems.extend(p);
                    }
                }
                Some("RecoveryRun") => {
                    if let Some(run) = typed::<RecoveryRun>(de, doc, &mut problems)
                        && let Err(p) = validate_run(&run.spec, opts)
                    {
                        problems.extend(p);
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
