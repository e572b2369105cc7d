//! Structural schemas of CustomResourceDefinitions: what kube-apiserver does with a CRD
//! version's `schema.openAPIV3Schema`.
//!
//! - [`StructuralSchema::from_openapi`] rejects schemas that are not structural (a node
//!   without `type` that is neither int-or-string nor preserve-unknown-fields, `properties`
//!   together with `additionalProperties`, a root that is not an object…), with errors
//!   worded like the API server's;
//! - [`StructuralSchema::prune`] drops fields the schema does not specify;
//! - [`StructuralSchema::apply_defaults`] sets `default:` values of missing fields;
//! - [`StructuralSchema::validate`] checks types, required fields, enums, formats, bounds,
//!   lengths and patterns, returning [`FieldError`]s.
//!
//! - [`StructuralSchema::validate_rules`] evaluates the CEL rules
//!   (`x-kubernetes-validations`) with kube's CEL interpreter (the `kube-cel` crate, which
//!   implements Kubernetes' CEL libraries), each on its own subtree, and literal
//!   `self.matches()` patterns with the regex compiled once (`rules.rs`).
//!
//! A request to create or update a custom resource goes through prune → defaults →
//! validate → CEL rules, in that order, as in kube-apiserver.

mod prune;
mod rules;
mod validate;

use std::sync::Arc;

use kube_cel::Validator;
use serde_json::{Map, Value};

// kube-apiserver evaluates `pattern` with Go's RE2; the regex crate implements the same
// linear-time, backtracking-free dialect.
use regex::Regex;

/// One validation error, as in a `Status` cause: `field` like `spec.steps[0].type`,
/// `reason` like `FieldValueNotSupported`, `message` like
/// `Unsupported value: "foo": supported values: "readField", "patch"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the offending field (`spec.steps[0].type`).
    pub field: String,
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueTypeInvalid`, `FieldValueTooLong`, `FieldValueTooMany`, `FieldValueForbidden`.
    pub reason: String,
    /// The error body, without the field (`Required value`).
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl FieldError {
    fn new(field: &str, reason: &str, message: String) -> FieldError {
        FieldError {
            field: field.to_string(),
            reason: reason.to_string(),
            message,
        }
    }
}

/// The `message` of the 422 `Status` kube-apiserver answers an invalid object with:
/// `RecoveryPlan.recovery.elotl.co "p" is invalid: spec.steps: Required value`
/// (several errors are listed as `[a, b]`).
pub fn invalid_message(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let name = serde_json::to_string(name).unwrap_or_default();
    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
    match list.as_slice() {
        [one] => format!("{qualified} {name} is invalid: {one}"),
        _ => format!("{qualified} {name} is invalid: [{}]", list.join(", ")),
    }
}

/// The JSON types a schema node can require.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "object" => Type::Object,
            "array" => Type::Array,
            "string" => Type::String,
            "integer" => Type::Integer,
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            _ => return None,
        })
    }

    fn as_str(&self) -> &'static str {
        match self {
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Boolean => "boolean",
        }
    }
}

/// How an object node treats keys it has no `properties` entry for.
#[derive(Clone, Debug, Default)]
enum Additional {
    /// Unknown keys are pruned.
    #[default]
    None,
    /// `additionalProperties: true`: unknown keys are kept.
    Any,
    /// `additionalProperties: {schema}`: every other key is a value of this schema.
    Schema(Box<Node>),
}

/// One node of a structural schema.
#[derive(Clone, Debug, Default)]
struct Node {
    type_: Option<Type>,
    nullable: bool,
    int_or_string: bool,
    preserve_unknown: bool,
    embedded_resource: bool,
    properties: Vec<(String, Node)>,
    additional: Additional,
    items: Option<Box<Node>>,
    required: Vec<String>,
    enum_: Vec<Value>,
    format: Option<String>,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    maximum: Option<f64>,
    exclusive_maximum: bool,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<Regex>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    default: Option<Value>,
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Box<Node>>,
}

impl Node {
    fn property(&self, key: &str) -> Option<&Node> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, n)| n)
    }
}

/// A CRD version's structural schema.
#[derive(Clone)]
pub struct StructuralSchema {
    root: Node,
    /// The CEL rules, compiled once; `None` when the schema has none.
    rules: Option<Arc<rules::Rules>>,
}

impl std::fmt::Debug for StructuralSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StructuralSchema")
            .field("root", &self.root)
            .field("rules", &self.rules.is_some())
            .finish()
    }
}

/// The value at a field path as validation errors name it (`spec.steps[0].timeout`).
fn value_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, part| {
        let (key, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        let mut v = if key.is_empty() { v } else { v.get(key)? };
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            v = v.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
        Some(v)
    })
}

/// Whether `schema` declares a CEL rule anywhere.
fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("x-kubernetes-validations") || m.values().any(has_rules),
        Value::Array(items) => items.iter().any(has_rules),
        _ => false,
    }
}

/// Where a node sits, which decides whether an empty `type` is allowed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Field,
    Item,
    /// Inside `allOf`/`anyOf`/`oneOf`/`not`: value validation only, no structure.
    Validation,
}

impl StructuralSchema {
    /// From a CRD version's `schema.openAPIV3Schema` (JSON). Rejects non-structural schemas
    /// with every reason, joined by `, ` (each prefixed `openAPIV3Schema…`), as the API
    /// server does on CRD create (422).
    pub fn from_openapi(schema: &Value) -> Result<StructuralSchema, String> {
        Self::from_openapi_errors(schema).map_err(|errs| {
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// Like [`StructuralSchema::from_openapi`], with the errors as [`FieldError`]s whose
    /// fields start at `openAPIV3Schema` (prefix `spec.versions[i].schema.` for a Status).
    pub fn from_openapi_errors(schema: &Value) -> Result<StructuralSchema, Vec<FieldError>> {
        let mut errors = Vec::new();
        let root = parse_node(schema, "openAPIV3Schema", Level::Root, &mut errors);
        if errors.is_empty() {
            let rules = rules::Rules::compile(schema).map(Arc::new);
            Ok(StructuralSchema { root, rules })
        } else {
            Err(errors)
        }
    }

    /// Drop fields not in the schema, honouring `x-kubernetes-preserve-unknown-fields` at
    /// any level, `x-kubernetes-embedded-resource` (its apiVersion/kind/metadata are kept)
    /// and `additionalProperties`. apiVersion, kind and metadata at the root are never
    /// pruned.
    pub fn prune(&self, obj: &mut Value) {
        prune::prune(&self.root, obj, true, &mut String::new(), &mut None);
    }

    /// [`Self::prune`], adding the path of every field it drops to `removed`.
    pub fn prune_reporting(&self, obj: &mut Value, removed: &mut Vec<String>) {
        prune::prune(
            &self.root,
            obj,
            true,
            &mut String::new(),
            &mut Some(removed),
        );
    }

    /// Set the `default:` of every missing field whose parent object exists.
    pub fn apply_defaults(&self, obj: &mut Value) {
        apply_defaults(&self.root, obj);
    }

    /// Validate an object against the schema. apiVersion, kind and metadata at the root are
    /// only checked when the schema specifies them.
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = Vec::new();
        validate::validate_root(&self.root, obj, &mut errors);
        errors
    }

    /// Evaluate the CEL rules against an object that passed [`StructuralSchema::validate`].
    /// `old` is the stored object of an update: as kube-apiserver's validation ratcheting
    /// does for unchanged fields, an update that leaves `spec` as it was (a status write) is
    /// not refused for rules the stored object already broke.
    pub fn validate_rules(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let Some(rules) = &self.rules else {
            return Vec::new();
        };
        if let Some(old) = old
            && old.get("spec") == obj.get("spec")
        {
            return Vec::new();
        }
        // A validator registers Kubernetes' CEL libraries when made: one per thread, made once.
        thread_local! {
            static VALIDATOR: Validator = Validator::new();
        }
        let mut errors = Vec::new();
        VALIDATOR.with(|v| rules.check(v, obj, old, &mut String::new(), &mut errors));
        errors
            .into_iter()
            .map(|e| {
                // As kube-apiserver words it: the value when it is a scalar, else only
                // the rule's message.
                let message = match value_at(obj, &e.field) {
                    Some(v) if !v.is_object() && !v.is_array() => {
                        format!("Invalid value: {}: {}", validate::render(v), e.message)
                    }
                    _ => format!("Invalid value: {}", e.message),
                };
                FieldError {
                    field: e.field,
                    reason: e.reason.unwrap_or_else(|| "FieldValueInvalid".to_string()),
                    message,
                }
            })
            .collect()
    }
}

fn apply_defaults(node: &Node, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in &node.properties {
                // Like kube-apiserver, a null of a field that is not nullable is dropped
                // before defaulting (and so a required one is then reported missing).
                if !child.nullable && map.get(key).is_some_and(Value::is_null) {
                    map.remove(key);
                }
                let missing = !map.contains_key(key);
                if missing && let Some(d) = &child.default {
                    map.insert(key.clone(), d.clone());
                }
                if let Some(v) = map.get_mut(key) {
                    apply_defaults(child, v);
                }
            }
            if let Additional::Schema(child) = &node.additional {
                let known: Vec<&str> = node.properties.iter().map(|(k, _)| k.as_str()).collect();
                if !child.nullable && child.default.is_none() {
                    map.retain(|k, v| known.contains(&k.as_str()) || !v.is_null());
                }
                for (k, v) in map.iter_mut() {
                    if !known.contains(&k.as_str()) {
                        apply_defaults(child, v);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(child) = &node.items {
                for v in items {
                    apply_defaults(child, v);
                }
            }
        }
        _ => {}
    }
}

fn required_error(field: &str, detail: &str) -> FieldError {
    FieldError::new(
        field,
        "FieldValueRequired",
        format!("Required value: {detail}"),
    )
}

fn invalid_error(field: &str, value: &Value, detail: &str) -> FieldError {
    FieldError::new(
        field,
        "FieldValueInvalid",
        format!("Invalid value: {}: {detail}", validate::render(value)),
    )
}

fn forbidden_error(field: &str, detail: &str) -> FieldError {
    FieldError::new(field, "FieldValueForbidden", format!("Forbidden: {detail}"))
}

fn get_bool(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn get_u64(
    m: &Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<u64> {
    let v = m.get(key)?;
    match v.as_u64() {
        Some(n) => Some(n),
        None => {
            errors.push(invalid_error(
                &format!("{path}.{key}"),
                v,
                "must be a non-negative integer",
            ));
            None
        }
    }
}

fn get_f64(
    m: &Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<f64> {
    let v = m.get(key)?;
    match v.as_f64() {
        Some(n) => Some(n),
        None => {
            errors.push(invalid_error(
                &format!("{path}.{key}"),
                v,
                "must be a number",
            ));
            None
        }
    }
}

/// Keywords a structural schema may not use.
const FORBIDDEN_KEYWORDS: &[&str] = &[
    "$ref",
    "definitions",
    "dependencies",
    "patternProperties",
    "additionalItems",
    "$schema",
    "id",
];

fn parse_node(v: &Value, path: &str, level: Level, errors: &mut Vec<FieldError>) -> Node {
    let Some(m) = v.as_object() else {
        errors.push(invalid_error(path, v, "must be a schema object"));
        return Node::default();
    };
    let mut node = Node::default();
    for kw in FORBIDDEN_KEYWORDS {
        if m.contains_key(*kw) {
            errors.push(forbidden_error(
                &format!("{path}.{kw}"),
                &format!("{kw} is not supported"),
            ));
        }
    }
    match m.get("type") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) if s == "null" => {
            errors.push(invalid_error(&format!("{path}.type"), &Value::String(s.clone()), "must not be null"));
        }
        Some(Value::String(s)) => match Type::parse(s) {
            Some(t) => node.type_ = Some(t),
            None => errors.push(FieldError::new(
                &format!("{path}.type"),
                "FieldValueNotSupported",
                format!(
                    "Unsupported value: {}: supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"",
                    validate::render(&Value::String(s.clone()))
                ),
            )),
        },
        Some(other) => errors.push(invalid_error(&format!("{path}.type"), other, "must be a string")),
    }
    node.nullable = get_bool(m, "nullable");
    node.int_or_string = get_bool(m, "x-kubernetes-int-or-string");
    node.embedded_resource = get_bool(m, "x-kubernetes-embedded-resource");
    match m.get("x-kubernetes-preserve-unknown-fields") {
        Some(Value::Bool(true)) => node.preserve_unknown = true,
        Some(Value::Bool(false)) => errors.push(invalid_error(
            &format!("{path}.x-kubernetes-preserve-unknown-fields"),
            &Value::Bool(false),
            "must be true or undefined",
        )),
        _ => {}
    }

    if level != Level::Validation {
        if node.embedded_resource && node.type_ != Some(Type::Object) {
            match node.type_ {
                None => errors.push(required_error(
                    &format!("{path}.type"),
                    "must be object if x-kubernetes-embedded-resource is true",
                )),
                Some(t) => errors.push(invalid_error(
                    &format!("{path}.type"),
                    &Value::String(t.as_str().into()),
                    "must be object if x-kubernetes-embedded-resource is true",
                )),
            }
        } else if node.type_.is_none() && !node.int_or_string && !node.embedded_resource {
            match level {
                Level::Root => errors.push(required_error(
                    &format!("{path}.type"),
                    "must not be empty at the root",
                )),
                Level::Item if !node.preserve_unknown => errors.push(required_error(
                    &format!("{path}.type"),
                    "must not be empty for specified array items",
                )),
                Level::Field if !node.preserve_unknown => errors.push(required_error(
                    &format!("{path}.type"),
                    "must not be empty for specified object fields",
                )),
                _ => {}
            }
        }
        if level == Level::Root && node.type_.is_some_and(|t| t != Type::Object) {
            errors.push(invalid_error(
                &format!("{path}.type"),
                &Value::String(node.type_.map(|t| t.as_str()).unwrap_or_default().into()),
                "must be object at the root",
            ));
        }
        if node.int_or_string && node.type_.is_some() {
            errors.push(invalid_error(
                &format!("{path}.type"),
                &Value::String(node.type_.map(|t| t.as_str()).unwrap_or_default().into()),
                "must be empty if x-kubernetes-int-or-string is true",
            ));
        }
    }

    if let Some(props) = m.get("properties") {
        match props.as_object() {
            Some(pm) => {
                for (k, pv) in pm {
                    let child_level = if level == Level::Validation {
                        Level::Validation
                    } else {
                        Level::Field
                    };
                    let child =
                        parse_node(pv, &format!("{path}.properties[{k}]"), child_level, errors);
                    node.properties.push((k.clone(), child));
                }
            }
            None => errors.push(invalid_error(
                &format!("{path}.properties"),
                props,
                "must be an object",
            )),
        }
    }
    match m.get("additionalProperties") {
        None => {}
        Some(Value::Bool(true)) => node.additional = Additional::Any,
        Some(Value::Bool(false)) => errors.push(forbidden_error(
            &format!("{path}.additionalProperties"),
            "additionalProperties cannot be set to false",
        )),
        Some(ap) => {
            let child_level = if level == Level::Validation {
                Level::Validation
            } else {
                Level::Field
            };
            let child = parse_node(
                ap,
                &format!("{path}.additionalProperties"),
                child_level,
                errors,
            );
            node.additional = Additional::Schema(Box::new(child));
        }
    }
    if !node.properties.is_empty() && !matches!(node.additional, Additional::None) {
        errors.push(forbidden_error(
            &format!("{path}.additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    match m.get("items") {
        None => {
            if node.type_ == Some(Type::Array) && level != Level::Validation {
                errors.push(required_error(
                    &format!("{path}.items"),
                    "must be specified",
                ));
            }
        }
        Some(Value::Array(_)) => errors.push(forbidden_error(
            &format!("{path}.items"),
            "items must be a schema object and not an array",
        )),
        Some(iv) => {
            let child_level = if level == Level::Validation {
                Level::Validation
            } else {
                Level::Item
            };
            node.items = Some(Box::new(parse_node(
                iv,
                &format!("{path}.items"),
                child_level,
                errors,
            )));
        }
    }
    if let Some(req) = m.get("required") {
        match req.as_array() {
            Some(list) => {
                node.required = list
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect();
            }
            None => errors.push(invalid_error(
                &format!("{path}.required"),
                req,
                "must be a list of strings",
            )),
        }
    }
    if let Some(e) = m.get("enum") {
        match e.as_array() {
            Some(list) => node.enum_ = list.clone(),
            None => errors.push(invalid_error(&format!("{path}.enum"), e, "must be a list")),
        }
    }
    node.format = m.get("format").and_then(Value::as_str).map(String::from);
    node.minimum = get_f64(m, "minimum", path, errors);
    node.maximum = get_f64(m, "maximum", path, errors);
    node.exclusive_minimum = get_bool(m, "exclusiveMinimum");
    node.exclusive_maximum = get_bool(m, "exclusiveMaximum");
    node.min_length = get_u64(m, "minLength", path, errors);
    node.max_length = get_u64(m, "maxLength", path, errors);
    node.min_items = get_u64(m, "minItems", path, errors);
    node.max_items = get_u64(m, "maxItems", path, errors);
    node.min_properties = get_u64(m, "minProperties", path, errors);
    node.max_properties = get_u64(m, "maxProperties", path, errors);
    if let Some(p) = m.get("pattern") {
        match p.as_str().map(Regex::new) {
            Some(Ok(re)) => node.pattern = Some(re),
            Some(Err(e)) => errors.push(invalid_error(
                &format!("{path}.pattern"),
                p,
                &format!(
                    "must be a valid regular expression, but isn't: error parsing regexp: {e}"
                ),
            )),
            None => errors.push(invalid_error(
                &format!("{path}.pattern"),
                p,
                "must be a string",
            )),
        }
    }
    node.default = m.get("default").cloned();
    for (kw, list) in [
        ("allOf", &mut node.all_of),
        ("anyOf", &mut node.any_of),
        ("oneOf", &mut node.one_of),
    ] {
        if let Some(v) = m.get(kw) {
            match v.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        list.push(parse_node(
                            item,
                            &format!("{path}.{kw}[{i}]"),
                            Level::Validation,
                            errors,
                        ));
                    }
                }
                None => errors.push(invalid_error(
                    &format!("{path}.{kw}"),
                    v,
                    "must be a list of schemas",
                )),
            }
        }
    }
    if let Some(v) = m.get("not") {
        node.not = Some(Box::new(parse_node(
            v,
            &format!("{path}.not"),
            Level::Validation,
            errors,
        )));
    }
    if level == Level::Root || node.embedded_resource {
        for (field, want) in [
            ("apiVersion", Type::String),
            ("kind", Type::String),
            ("metadata", Type::Object),
        ] {
            if let Some(child) = node.property(field)
                && child.type_ != Some(want)
            {
                errors.push(invalid_error(
                    &format!("{path}.properties[{field}].type"),
                    &Value::String(child.type_.map(|t| t.as_str()).unwrap_or_default().into()),
                    &format!("must be {}", want.as_str()),
                ));
            }
        }
    }
    if let Some(d) = &node.default
        && level != Level::Validation
    {
        if level == Level::Root {
            errors.push(forbidden_error(
                &format!("{path}.default"),
                "must not be set at the root",
            ));
        } else {
            let mut errs = Vec::new();
            validate::validate_node(&node, d, &format!("{path}.default"), &mut errs);
            for e in errs {
                errors.push(invalid_error(&format!("{path}.default"), d, &e.to_string()));
            }
        }
    }
    node
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod cel_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn value_at_follows_field_paths_of_errors() {
        let obj = json!({"spec": {"steps": [{"retries": {"limit": 1000}}]}});
        assert_eq!(
            value_at(&obj, "spec.steps[0].retries.limit"),
            Some(&json!(1000))
        );
    }
}
