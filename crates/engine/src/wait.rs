//! The condition of a `wait` step, evaluated against the value read at its field path.

use lifeboat_api::WaitCondition;
use serde_json::Value;

/// Whether a wait step's condition holds.
///
/// `actual` is the value at the field path (`None` when the field is missing); `expected`
/// is the step's rendered `value`. A missing field or `null` never satisfies any condition
/// (`NotEquals` waits for the field to exist and differ). Values compare as JSON; a string
/// `expected` also equals a number or boolean with the same text (`"3"` equals `3`), since
/// rendered templates are strings.
pub fn wait_satisfied(
    condition: WaitCondition,
    actual: Option<&Value>,
    expected: Option<&Value>,
) -> bool {
    let Some(actual) = actual.filter(|v| !v.is_null()) else {
        return false;
    };
    match condition {
        WaitCondition::Exists => true,
        WaitCondition::Equals => expected.is_some_and(|e| loosely_equal(actual, e)),
        WaitCondition::NotEquals => expected.is_some_and(|e| !loosely_equal(actual, e)),
    }
}

fn loosely_equal(actual: &Value, expected: &Value) -> bool {
    if actual == expected {
        return true;
    }
    match (actual, expected) {
        (Value::Number(n), Value::String(s)) => {
            n.to_string() == *s
                || matches!((n.as_f64(), s.trim().parse::<f64>()), (Some(a), Ok(b)) if a == b)
        }
        (Value::Bool(b), Value::String(s)) => b.to_string() == *s,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions() {
        use WaitCondition::*;
        assert!(wait_satisfied(Exists, Some(&json!("10.0.0.1")), None));
        assert!(!wait_satisfied(Exists, None, None));
        assert!(!wait_satisfied(Exists, Some(&Value::Null), None));
        assert!(wait_satisfied(
            Equals,
            Some(&json!("True")),
            Some(&json!("True"))
        ));
        assert!(wait_satisfied(Equals, Some(&json!(3)), Some(&json!("3"))));
        assert!(wait_satisfied(
            Equals,
            Some(&json!(true)),
            Some(&json!("true"))
        ));
        assert!(!wait_satisfied(
            Equals,
            Some(&json!("False")),
            Some(&json!("True"))
        ));
        assert!(wait_satisfied(
            NotEquals,
            Some(&json!("a")),
            Some(&json!("b"))
        ));
        assert!(!wait_satisfied(NotEquals, None, Some(&json!("b"))));
        assert!(!wait_satisfied(
            NotEquals,
            Some(&json!("b")),
            Some(&json!("b"))
        ));
    }
}
