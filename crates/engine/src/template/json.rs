//! Templates in the string leaves of a JSON document (a patch value, a Job's pod template, a
//! wait value): compiled once, at validation, and rendered for each step attempt.
//!
//! Object keys are never templates, and the rendered output is never re-parsed, so quotes
//! or newlines in values cannot change the document's structure.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Template, TemplateContext, TemplateError};
use crate::fieldpath::{FieldPath, Segment};

/// A JSON document whose string leaves may hold templates.
#[derive(Debug, Clone)]
pub struct JsonTemplate(Node);

#[derive(Debug, Clone)]
enum Node {
    /// A subtree without any template: rendered as is.
    Literal(Value),
    /// A string leaf holding a template.
    Text(Template),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// A string leaf that does not parse, with its location in the document.
#[derive(Debug, Clone, PartialEq)]
pub struct LeafError {
    /// Where the leaf is (`spec.containers[0].command[2]`); empty for the root.
    pub location: String,
    pub error: TemplateError,
}

impl JsonTemplate {
    /// Compile every string leaf of `v`; the errors of all leaves that do not parse.
    pub fn compile(v: &Value) -> Result<JsonTemplate, Vec<LeafError>> {
        let mut errors = Vec::new();
        let node = compile(v, &mut Vec::new(), &mut errors);
        if errors.is_empty() {
            Ok(JsonTemplate(node))
        } else {
            Err(errors)
        }
    }

    /// Render every templated leaf; an error names the leaf.
    pub fn render(&self, ctx: &TemplateContext) -> Result<Value, TemplateError> {
        render(&self.0, &mut Vec::new(), ctx)
    }

    /// Call `f` with the location and template of every templated leaf.
    pub fn for_each_template(&self, f: &mut dyn FnMut(&[Segment], &Template)) {
        fn walk(n: &Node, path: &mut Vec<Segment>, f: &mut dyn FnMut(&[Segment], &Template)) {
            match n {
                Node::Literal(_) => {}
                Node::Text(t) => f(path, t),
                Node::Array(items) => {
                    for (i, x) in items.iter().enumerate() {
                        path.push(Segment::Index(i));
                        walk(x, path, f);
                        path.pop();
                    }
                }
                Node::Object(fields) => {
                    for (k, x) in fields {
                        path.push(Segment::Key(k.clone()));
                        walk(x, path, f);
                        path.pop();
                    }
                }
            }
        }
        walk(&self.0, &mut Vec::new(), f)
    }

    /// Every `.Values.<key>` the templated leaves reference.
    pub fn referenced_values(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.for_each_template(&mut |_, t| out.extend(t.referenced_values()));
        out
    }
}

fn compile(v: &Value, path: &mut Vec<Segment>, errors: &mut Vec<LeafError>) -> Node {
    match v {
        Value::String(s) if s.contains("{{") => match Template::parse(s) {
            Ok(t) => Node::Text(t),
            Err(error) => {
                errors.push(LeafError {
                    location: location_of(path),
                    error,
                });
                Node::Literal(Value::Null)
            }
        },
        Value::Array(items) => {
            let nodes: Vec<Node> = items
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    path.push(Segment::Index(i));
                    let n = compile(x, path, errors);
                    path.pop();
                    n
                })
                .collect();
            if nodes.iter().all(|n| matches!(n, Node::Literal(_))) {
                Node::Literal(v.clone())
            } else {
                Node::Array(nodes)
            }
        }
        Value::Object(map) => {
            let fields: Vec<(String, Node)> = map
                .iter()
                .map(|(k, x)| {
                    path.push(Segment::Key(k.clone()));
                    let n = compile(x, path, errors);
                    path.pop();
                    (k.clone(), n)
                })
                .collect();
            if fields.iter().all(|(_, n)| matches!(n, Node::Literal(_))) {
                Node::Literal(v.clone())
            } else {
                Node::Object(fields)
            }
        }
        other => Node::Literal(other.clone()),
    }
}

fn render(
    n: &Node,
    path: &mut Vec<Segment>,
    ctx: &TemplateContext,
) -> Result<Value, TemplateError> {
    Ok(match n {
        Node::Literal(v) => v.clone(),
        Node::Text(t) => Value::String(t.render(ctx).map_err(|e| at_leaf(path, e))?),
        Node::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, x) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                out.push(render(x, path, ctx)?);
                path.pop();
            }
            Value::Array(out)
        }
        Node::Object(fields) => {
            let mut out = serde_json::Map::with_capacity(fields.len());
            for (k, x) in fields {
                path.push(Segment::Key(k.clone()));
                out.insert(k.clone(), render(x, path, ctx)?);
                path.pop();
            }
            Value::Object(out)
        }
    })
}

/// Text of a leaf location (`spec.containers[0].command[2]`).
pub fn location_of(path: &[Segment]) -> String {
    FieldPath::from_segments(path.to_vec()).to_string()
}

fn at_leaf(path: &[Segment], e: TemplateError) -> TemplateError {
    if path.is_empty() {
        e
    } else {
        TemplateError::AtLeaf {
            location: location_of(path),
            source: Box::new(e),
        }
    }
}

/// Compile and render `v` in one go (for callers holding an unvalidated document); the
/// first leaf that does not parse is the error.
pub fn render_leaves(v: &Value, ctx: &TemplateContext) -> Result<Value, TemplateError> {
    match JsonTemplate::compile(v) {
        Ok(t) => t.render(ctx),
        Err(mut errors) => {
            let first = errors.remove(0);
            Err(if first.location.is_empty() {
                first.error
            } else {
                TemplateError::AtLeaf {
                    location: first.location,
                    source: Box::new(first.error),
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn literal_documents_render_to_themselves_and_templates_are_found_with_their_location() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "{{ .Values.img }}",
            "command": ["echo", "{{ .Run.Name }}"]}]}, "n": 3});
        let t = JsonTemplate::compile(&doc).unwrap();
        let mut seen = Vec::new();
        t.for_each_template(&mut |p, t| seen.push((location_of(p), t.source().to_string())));
        assert_eq!(
            seen,
            vec![
                (
                    "spec.containers[0].image".to_string(),
                    "{{ .Values.img }}".to_string()
                ),
                (
                    "spec.containers[0].command[1]".to_string(),
                    "{{ .Run.Name }}".to_string()
                ),
            ]
        );
        assert_eq!(t.referenced_values(), BTreeSet::from(["img".to_string()]));

        let values = BTreeMap::from([("img".to_string(), json!("x:1"))]);
        let alert = lifeboat_api::AlertSpec::default();
        let ctx = TemplateContext {
            values: &values,
            alert: &alert,
            run_name: "r",
            run_namespace: "ns",
            run_phase: "Running",
            run_message: "",
        };
        assert_eq!(
            t.render(&ctx).unwrap(),
            json!({"spec": {"containers": [{"name": "a", "image": "x:1",
                "command": ["echo", "r"]}]}, "n": 3})
        );
        let plain = json!({"a": [1, "b", {"c": null}]});
        assert_eq!(
            JsonTemplate::compile(&plain).unwrap().render(&ctx).unwrap(),
            plain
        );
    }

    #[test]
    fn every_leaf_that_does_not_parse_is_reported() {
        let errors = JsonTemplate::compile(&json!({"a": "{{ .Values.x", "b": ["ok", "{{ end }}"]}))
            .unwrap_err();
        let locations: Vec<&str> = errors.iter().map(|e| e.location.as_str()).collect();
        assert_eq!(locations, vec!["a", "b[1]"]);
    }
}
