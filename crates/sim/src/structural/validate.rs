//! Validation of an object against a structural schema, with kube-apiserver's wording.

use serde_json::Value;

use super::{Additional, FieldError, Node, Type};

/// `"text"` for strings (JSON-quoted, like Go's `%q`), the JSON text for other scalars.
pub(super) fn render(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".to_string(),
        Value::Array(_) => "\"array\"".to_string(),
        other => other.to_string(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
}

fn type_invalid(path: &str, actual: &str, expected: &str) -> FieldError {
    FieldError::new(
        path,
        "FieldValueTypeInvalid",
        format!(
            "Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""
        ),
    )
}

fn invalid(path: &str, value: &Value, detail: String) -> FieldError {
    FieldError::new(
        path,
        "FieldValueInvalid",
        format!("Invalid value: {}: {detail}", render(value)),
    )
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Validate the whole object: the root's apiVersion/kind/metadata are skipped unless the
/// schema specifies them.
pub(super) fn validate_root(root: &Node, obj: &Value, errors: &mut Vec<FieldError>) {
    let Some(map) = obj.as_object() else {
        errors.push(type_invalid("<root>", json_type(obj), "object"));
        return;
    };
    for req in &root.required {
        if !map.contains_key(req) {
            errors.push(FieldError::new(
                req,
                "FieldValueRequired",
                "Required value".into(),
            ));
        }
    }
    for (key, value) in map {
        if let Some(child) = root.property(key) {
            validate_node(child, value, key, errors);
        } else if let Additional::Schema(child) = &root.additional
            && !matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
        {
            validate_node(child, value, key, errors);
        }
    }
    validate_combinators(root, obj, "", errors);
}

/// Validate one value at `path` against `node`.
pub(super) fn validate_node(node: &Node, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if node.nullable || (node.type_.is_none() && !node.int_or_string) {
            return;
        }
        let expected = node.type_.map(|t| t.as_str()).unwrap_or("integer,string");
        errors.push(type_invalid(path, "null", expected));
        return;
    }
    if node.int_or_string {
        if !matches!(json_type(value), "integer" | "string") {
            errors.push(type_invalid(path, json_type(value), "integer,string"));
            return;
        }
    } else if let Some(t) = node.type_ {
        let actual = json_type(value);
        let ok = match t {
            Type::Number => matches!(actual, "integer" | "number"),
            other => actual == other.as_str(),
        };
        if !ok {
            errors.push(type_invalid(path, actual, t.as_str()));
            return;
        }
    }
    if !node.enum_.is_empty() && !node.enum_.contains(value) {
        let supported: Vec<String> = node
            .enum_
            .iter()
            .map(|v| match v {
                Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
                other => serde_json::to_string(&serde_json::to_string(other).unwrap_or_default())
                    .unwrap_or_default(),
            })
            .collect();
        errors.push(FieldError::new(
            path,
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {}: supported values: {}",
                render(value),
                supported.join(", ")
            ),
        ));
    }
    match value {
        Value::Object(map) => {
            for req in &node.required {
                if !map.contains_key(req) {
                    errors.push(FieldError::new(
                        &child_path(path, req),
                        "FieldValueRequired",
                        "Required value".into(),
                    ));
                }
            }
            if let Some(min) = node.min_properties
                && (map.len() as u64) < min
            {
                errors.push(invalid(
                    path,
                    value,
                    format!("{path} in body should have at least {min} properties"),
                ));
            }
            if let Some(max) = node.max_properties
                && (map.len() as u64) > max
            {
                errors.push(FieldError::new(
                    path,
                    "FieldValueTooMany",
                    format!("Too many: {}: must have at most {max} items", map.len()),
                ));
            }
            for (key, v) in map {
                if let Some(child) = node.property(key) {
                    validate_node(child, v, &child_path(path, key), errors);
                } else if let Additional::Schema(child) = &node.additional {
                    validate_node(child, v, &child_path(path, key), errors);
                }
            }
        }
        Value::Array(items) => {
            if let Some(min) = node.min_items
                && (items.len() as u64) < min
            {
                errors.push(invalid(
                    path,
                    value,
                    format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = node.max_items
                && (items.len() as u64) > max
            {
                errors.push(FieldError::new(
                    path,
                    "FieldValueTooMany",
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
            if let Some(child) = &node.items {
                for (i, v) in items.iter().enumerate() {
                    validate_node(child, v, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::String(s) => validate_string(node, value, s, path, errors),
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                validate_number(node, value, f, path, errors);
            }
        }
        _ => {}
    }
    validate_combinators(node, value, path, errors);
}

fn validate_string(node: &Node, value: &Value, s: &str, path: &str, errors: &mut Vec<FieldError>) {
    let len = s.chars().count() as u64;
    if let Some(max) = node.max_length
        && len > max
    {
        errors.push(FieldError::new(
            path,
            "FieldValueTooLong",
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(min) = node.min_length
        && len < min
    {
        errors.push(invalid(
            path,
            value,
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(re) = &node.pattern
        && !re.is_match(s)
    {
        errors.push(invalid(
            path,
            value,
            format!("{path} in body should match '{}'", re.as_str()),
        ));
    }
    if let Some(format) = &node.format
        && !format_ok(format, s)
    {
        errors.push(FieldError::new(
            path,
            "FieldValueTypeInvalid",
            format!(
                "Invalid value: {}: {path} in body must be of type {format}: {}",
                render(value),
                render(value)
            ),
        ));
    }
}

/// Formats kube-apiserver checks; unknown formats pass (as in the API server).
fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10,
        "uuid" => uuid::Uuid::parse_str(s).is_ok() && s.len() == 36,
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(s).is_ok()
        }
        _ => true,
    }
}

fn validate_number(node: &Node, value: &Value, f: f64, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(min) = node.minimum {
        let fails = if node.exclusive_minimum {
            f <= min
        } else {
            f < min
        };
        if fails {
            let rel = if node.exclusive_minimum {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should be {rel} {}", fmt_num(min)),
            ));
        }
    }
    if let Some(max) = node.maximum {
        let fails = if node.exclusive_maximum {
            f >= max
        } else {
            f > max
        };
        if fails {
            let rel = if node.exclusive_maximum {
                "less than"
            } else {
                "less than or equal to"
            };
            errors.push(invalid(
                path,
                value,
                format!("{path} in body should be {rel} {}", fmt_num(max)),
            ));
        }
    }
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

fn validate_combinators(node: &Node, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let passes = |n: &Node| {
        let mut e = Vec::new();
        validate_node(
            n,
            value,
            if path.is_empty() { "<root>" } else { path },
            &mut e,
        );
        e.is_empty()
    };
    for n in &node.all_of {
        validate_node(n, value, path, errors);
    }
    if !node.any_of.is_empty() && !node.any_of.iter().any(passes) {
        errors.push(invalid(
            path,
            value,
            format!("{path} in body must validate at least one schema (anyOf)"),
        ));
    }
    if !node.one_of.is_empty() {
        let n = node.one_of.iter().filter(|n| passes(n)).count();
        if n != 1 {
            errors.push(invalid(
                path,
                value,
                format!("{path} in body must validate one and only one schema (oneOf)"),
            ));
        }
    }
    if let Some(not) = &node.not
        && passes(not)
    {
        errors.push(invalid(
            path,
            value,
            format!("{path} in body must not validate the schema (not)"),
        ));
    }
}
