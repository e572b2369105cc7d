//! A schema's CEL rules (`x-kubernetes-validations`), compiled once when the CRD is
//! registered and evaluated where they are.
//!
//! kube-cel's walk of a whole object converts every node it passes into a CEL value — the
//! whole object at the root, its `spec` again one level down, and so on to each rule —
//! and its `matches()` compiles the regular expression on every call, where kube-apiserver
//! compiles a constant pattern once, with the CRD. Both cost the simulator more than
//! everything else it does for a write. So here:
//! - each topmost node that has rules is handed to kube-cel with its own subtree only; the
//!   nodes above it, which have none, are walked without any conversion;
//! - a rule that is exactly `self.matches('<literal>')` on a string is checked with the
//!   regular expression compiled once (the regex crate, which kube-cel's `matches` uses
//!   too), and left out of what kube-cel is given.
//!
//! The errors are the ones kube-cel reports — same field paths, messages and reasons. As
//! in kube-apiserver, a null value is not validated by its rules.

use std::fmt::Write;

use kube_cel::{CompiledSchema, Validator, compile_schema};
use regex::Regex;
use serde_json::Value;

/// A failed rule: where, the message, and the reason when the rule names one.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleError {
    pub field: String,
    pub message: String,
    pub reason: Option<String>,
}

/// A `self.matches('<literal>')` rule.
struct Pattern {
    regex: Regex,
    message: String,
    reason: Option<String>,
}

/// The rules of one schema node and of the nodes below it that have any.
#[derive(Default)]
pub struct Rules {
    /// kube-cel's compiled subtree, at the topmost node with rules other than patterns.
    cel: Option<CompiledSchema>,
    patterns: Vec<Pattern>,
    properties: Vec<(String, Rules)>,
    items: Option<Box<Rules>>,
    /// `additionalProperties` (never together with `properties` in a structural schema).
    additional: Option<Box<Rules>>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("cel", &self.cel.is_some())
            .field("patterns", &self.patterns.len())
            .field("properties", &self.properties)
            .field("items", &self.items)
            .field("additional", &self.additional)
            .finish()
    }
}

impl Rules {
    /// The rules of a structural schema; `None` when it has none.
    pub fn compile(schema: &Value) -> Option<Rules> {
        let mut stripped = schema.clone();
        let rules = build(&mut stripped, false);
        (!rules.is_empty()).then_some(rules)
    }

    /// Evaluates the rules against `value` (at field path `path`, empty at the root), with
    /// `old` the stored value of an update.
    pub fn check(
        &self,
        validator: &Validator,
        value: &Value,
        old: Option<&Value>,
        path: &mut String,
        errors: &mut Vec<RuleError>,
    ) {
        if value.is_null() {
            return;
        }
        if let Some(cel) = &self.cel
            && let Err(errs) = validator.validate_compiled(cel, value, old)
        {
            errors.extend(errs.into_vec().into_iter().map(|e| RuleError {
                field: join(path, &e.field_path),
                message: e.message,
                reason: e.reason,
            }));
        }
        if let Value::String(s) = value {
            for p in &self.patterns {
                if !p.regex.is_match(s) {
                    errors.push(RuleError {
                        field: path.clone(),
                        message: p.message.clone(),
                        reason: p.reason.clone(),
                    });
                }
            }
        }
        let len = path.len();
        match value {
            Value::Object(obj) => {
                for (key, rules) in &self.properties {
                    if let Some(v) = obj.get(key) {
                        push_key(path, key);
                        rules.check(validator, v, old.and_then(|o| o.get(key)), path, errors);
                        path.truncate(len);
                    }
                }
                if let Some(rules) = &self.additional {
                    for (key, v) in obj {
                        push_key(path, key);
                        rules.check(validator, v, old.and_then(|o| o.get(key)), path, errors);
                        path.truncate(len);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(rules) = &self.items {
                    let old_items = old.and_then(Value::as_array);
                    for (i, v) in items.iter().enumerate() {
                        let _ = write!(path, "[{i}]");
                        let old_item = old_items.and_then(|a| a.get(i));
                        rules.check(validator, v, old_item, path, errors);
                        path.truncate(len);
                    }
                }
            }
            _ => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.cel.is_none()
            && self.patterns.is_empty()
            && self.properties.is_empty()
            && self.items.is_none()
            && self.additional.is_none()
    }
}

/// The rules of `node`, taking its pattern rules (and those of the nodes below) out of it.
/// `covered`: an ancestor's kube-cel subtree already evaluates this node's other rules.
fn build(node: &mut Value, covered: bool) -> Rules {
    let mut rules = Rules::default();
    let Some(obj) = node.as_object_mut() else {
        return rules;
    };
    let is_string = obj.get("type").and_then(Value::as_str) == Some("string");
    if let Some(Value::Array(list)) = obj.get_mut("x-kubernetes-validations") {
        list.retain(|rule| match is_string.then(|| pattern(rule)).flatten() {
            Some(p) => {
                rules.patterns.push(p);
                false
            }
            None => true,
        });
        if list.is_empty() {
            obj.remove("x-kubernetes-validations");
        }
    }
    // allOf/oneOf/anyOf branches are left whole to kube-cel, patterns included.
    let cel_here = !covered
        && (obj.contains_key("x-kubernetes-validations")
            || ["allOf", "oneOf", "anyOf"]
                .iter()
                .any(|k| obj.get(*k).is_some_and(super::has_rules)));
    let covered = covered || cel_here;
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (key, child) in props.iter_mut() {
            let child_rules = build(child, covered);
            if !child_rules.is_empty() {
                rules.properties.push((key.clone(), child_rules));
            }
        }
    }
    if let Some(items) = obj.get_mut("items") {
        let child_rules = build(items, covered);
        if !child_rules.is_empty() {
            rules.items = Some(Box::new(child_rules));
        }
    }
    // As kube-cel and kube-apiserver: a map that preserves unknown fields is not walked.
    let preserve = obj
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true);
    if !preserve && let Some(additional) = obj.get_mut("additionalProperties") {
        let child_rules = build(additional, covered);
        if !child_rules.is_empty() {
            rules.additional = Some(Box::new(child_rules));
        }
    }
    if cel_here {
        rules.cel = Some(compile_schema(node));
    }
    rules
}

/// A rule that is exactly `self.matches('<literal>')`, with a static message if any.
fn pattern(rule: &Value) -> Option<Pattern> {
    let fields = rule.as_object()?;
    if fields
        .keys()
        .any(|k| !matches!(k.as_str(), "rule" | "message" | "reason"))
    {
        return None;
    }
    let text = fields.get("rule")?.as_str()?;
    let literal = text
        .trim()
        .strip_prefix("self.matches('")?
        .strip_suffix("')")?;
    let regex = Regex::new(&unquote(literal)?).ok()?;
    let optional = |key: &str| match fields.get(key) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    let message = optional("message")?.unwrap_or_else(|| format!("failed rule: {text}"));
    Some(Pattern {
        regex,
        message,
        reason: optional("reason")?,
    })
}

/// The value of the body of a single-quoted CEL string: `\\`, `\'` and `\"` unescaped;
/// `None` for any other escape or an unescaped quote, which the fast path leaves to kube-cel.
fn unquote(body: &str) -> Option<String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('\\' | '\'' | '"') => out.push(e),
                _ => return None,
            },
            '\'' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// `path` and a path relative to it, as kube-cel joins them.
fn join(path: &str, rel: &str) -> String {
    if path.is_empty() {
        rel.to_string()
    } else if rel.is_empty() {
        path.to_string()
    } else if rel.starts_with('[') || rel.starts_with('.') {
        format!("{path}{rel}")
    } else {
        format!("{path}.{rel}")
    }
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(rules: &Rules, obj: &Value, old: Option<&Value>) -> Vec<RuleError> {
        let mut errs = Vec::new();
        rules.check(&Validator::new(), obj, old, &mut String::new(), &mut errs);
        errs.sort_by(|a, b| (&a.field, &a.message).cmp(&(&b.field, &b.message)));
        errs
    }

    /// kube-cel's own evaluation of the whole object, the reference.
    fn reference(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<RuleError> {
        let compiled = compile_schema(schema);
        let mut errs: Vec<RuleError> = match Validator::new().validate_compiled(&compiled, obj, old)
        {
            Ok(()) => Vec::new(),
            Err(e) => e
                .into_vec()
                .into_iter()
                .map(|e| RuleError {
                    field: e.field_path,
                    message: e.message,
                    reason: e.reason,
                })
                .collect(),
        };
        errs.sort_by(|a, b| (&a.field, &a.message).cmp(&(&b.field, &b.message)));
        errs
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "x-kubernetes-validations": [
                            {"rule": "self.matches('^[a-z]+$')", "message": "lower case only"}]},
                        "timeout": {"type": "string", "x-kubernetes-validations": [
                            {"rule": "self.matches('^[0-9]+(\\\\.[0-9]+)?s$')"}]},
                        "quoted": {"type": "string", "x-kubernetes-validations": [
                            {"rule": "self.matches('^it\\'s$')", "reason": "FieldValueForbidden",
                             "message": "only it's"}]},
                        "untouched": {"type": "string"},
                        "steps": {"type": "array", "items": {
                            "type": "object",
                            "x-kubernetes-validations": [
                                {"rule": "(self.type == 'a') == has(self.a)", "message": "a iff type a"}],
                            "properties": {
                                "type": {"type": "string"},
                                "a": {"type": "object", "properties": {
                                    "limit": {"type": "integer", "x-kubernetes-validations": [
                                        {"rule": "self <= 10", "message": "at most 10"}]},
                                    "key": {"type": "string", "x-kubernetes-validations": [
                                        {"rule": "self.matches('^k')", "message": "starts with k"}]}
                                }}
                            }
                        }},
                        "labels": {"type": "object", "additionalProperties": {
                            "type": "string", "x-kubernetes-validations": [
                                {"rule": "self.matches('^v')", "message": "starts with v"}]}},
                        "frozen": {"type": "string", "x-kubernetes-validations": [
                            {"rule": "self == oldSelf", "message": "immutable"}]}
                    }
                }
            }
        })
    }

    #[test]
    fn the_same_errors_as_kube_cel_over_the_whole_object() {
        let schema = schema();
        let rules = Rules::compile(&schema).unwrap();
        let cases = [
            json!({"spec": {}}),
            json!({"spec": {"name": "ok", "timeout": "1.5s", "quoted": "it's",
                "steps": [{"type": "a", "a": {"limit": 3, "key": "k1"}}],
                "labels": {"x": "v1"}, "frozen": "f"}}),
            json!({"spec": {"name": "Bad", "timeout": "1.5", "quoted": "its",
                "steps": [{"type": "a", "a": {"limit": 30, "key": "x"}}, {"type": "b", "a": {}},
                          {"type": "c"}],
                "labels": {"x": "w", "y": "v", "z": "q"}, "untouched": "ANY", "frozen": "g"}}),
            json!({"metadata": {"name": "x"}, "spec": {"steps": []}}),
        ];
        let old = json!({"spec": {"frozen": "f"}});
        for obj in &cases {
            for old in [None, Some(&old)] {
                let got = errors(&rules, obj, old);
                assert_eq!(got, reference(&schema, obj, old), "{obj}");
            }
        }
        // The third case breaks each kind of rule: name, timeout, quoted, the limit and key
        // of steps[0], steps[1]'s own rule, labels x and z, and frozen (against `old`).
        assert_eq!(errors(&rules, &cases[2], Some(&old)).len(), 9);
    }

    #[test]
    fn literal_patterns_are_taken_out_of_what_kube_cel_evaluates() {
        let rules = Rules::compile(&schema()).unwrap();
        let spec = &rules.properties[0].1;
        assert!(
            rules.cel.is_none() && spec.cel.is_none(),
            "no rules above the steps"
        );
        let by_key = |k: &str| spec.properties.iter().find(|(key, _)| key == k).unwrap();
        assert_eq!(by_key("name").1.patterns.len(), 1);
        assert!(by_key("name").1.cel.is_none());
        assert!(spec.properties.iter().all(|(k, _)| k != "untouched"));
        let step = spec.properties.iter().find(|(k, _)| k == "steps").unwrap();
        let item = step.1.items.as_ref().unwrap();
        assert!(item.cel.is_some(), "the step's own rule goes to kube-cel");
        assert_eq!(
            item.properties[0].1.properties.len(),
            1,
            "under it, only the pattern is walked here"
        );
    }

    #[test]
    fn the_message_is_failed_rule_when_none_is_given() {
        let rules = Rules::compile(&schema()).unwrap();
        let errs = errors(&rules, &json!({"spec": {"timeout": "soon"}}), None);
        assert_eq!(
            errs,
            vec![RuleError {
                field: "spec.timeout".into(),
                message: "failed rule: self.matches('^[0-9]+(\\\\.[0-9]+)?s$')".into(),
                reason: None,
            }]
        );
    }

    #[test]
    fn null_values_are_not_validated_by_their_rules() {
        let rules = Rules::compile(&schema()).unwrap();
        let obj = json!({"spec": {"name": null, "steps": [null], "labels": {"x": null}}});
        assert_eq!(errors(&rules, &obj, None), vec![]);
    }

    #[test]
    fn only_plain_literals_take_the_fast_path() {
        let rule = |r: &str| json!({"rule": r});
        assert!(pattern(&rule("self.matches('^a$')")).is_some());
        assert!(pattern(&rule("self.matches('a\\\\.b')")).is_some());
        for other in [
            "self.matches('^a$') && size(self) > 1",
            "self.matches('a') || self.matches('b')",
            "self.matches(r'^a$')",
            "self.matches('\\n')",
            "self.matches('(')",
            "self.matches(\"^a$\")",
        ] {
            assert!(pattern(&rule(other)).is_none(), "{other}");
        }
        let with_expression =
            json!({"rule": "self.matches('^a$')", "messageExpression": "'no: ' + self"});
        assert!(pattern(&with_expression).is_none());
        assert_eq!(unquote("a\\\\.b\\'c").as_deref(), Some("a\\.b'c"));
    }
}
