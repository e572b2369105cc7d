//! The comparisons of a `check` step's field assertions.
//!
//! Equality is the rule of `wait` steps ([`crate::wait_satisfied`]'s loose equality: a
//! string also equals a number or boolean with the same text). Ordering needs to know what
//! the values are (`compareAs`): numbers, Go durations or Kubernetes quantities.

use std::cmp::Ordering;

use lifeboat_api::{CompareAs, GoDuration, Operator, WaitCondition};
use serde_json::Value;

use crate::wait_satisfied;

/// Whether `actual` (the field's value, `None` when absent) satisfies `operator` against
/// `expected`; an error says why the values cannot be compared.
pub fn assertion_holds(
    operator: Operator,
    compare_as: Option<CompareAs>,
    actual: Option<&Value>,
    expected: Option<&Value>,
) -> Result<bool, String> {
    let present = actual.filter(|v| !v.is_null());
    let ordering = |wanted: fn(Ordering) -> bool| -> Result<bool, String> {
        let (Some(a), Some(e)) = (present, expected) else {
            return Ok(false);
        };
        let kind = compare_as.unwrap_or(CompareAs::Number);
        let a = scalar(kind, a).map_err(|m| format!("the field's value {m}"))?;
        let e = scalar(kind, e).map_err(|m| format!("the expected value {m}"))?;
        Ok(a.partial_cmp(&e).is_some_and(wanted))
    };
    match operator {
        Operator::Exists => Ok(present.is_some()),
        Operator::NotExists => Ok(present.is_none()),
        Operator::Equals => Ok(wait_satisfied(WaitCondition::Equals, present, expected)),
        Operator::NotEquals => Ok(wait_satisfied(WaitCondition::NotEquals, present, expected)),
        Operator::GreaterThan => ordering(Ordering::is_gt),
        Operator::GreaterOrEqual => ordering(Ordering::is_ge),
        Operator::LessThan => ordering(Ordering::is_lt),
        Operator::LessOrEqual => ordering(Ordering::is_le),
    }
}

/// `v` as a number of the kind given (durations in seconds, quantities in base units).
pub fn scalar(kind: CompareAs, v: &Value) -> Result<f64, String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => return Err(format!("{other} is not a {}", kind_name(kind))),
    };
    let parsed = match kind {
        CompareAs::Number => text.parse::<f64>().ok().filter(|f| f.is_finite()),
        CompareAs::Duration => text
            .parse::<GoDuration>()
            .ok()
            .map(|d| std::time::Duration::from(d).as_secs_f64()),
        CompareAs::Quantity => parse_quantity(&text),
    };
    parsed.ok_or_else(|| format!("{v} is not a {}", kind_name(kind)))
}

fn kind_name(kind: CompareAs) -> &'static str {
    match kind {
        CompareAs::Number => "number",
        CompareAs::Duration => "duration (30s, 1m30s)",
        CompareAs::Quantity => "quantity (500m, 2Gi, 1e3)",
    }
}

/// A Kubernetes quantity (`resource.Quantity`'s text form) in base units: a signed decimal
/// number followed by a binary suffix (`Ki` … `Ei`), a decimal suffix (`n`, `u`, `m`, ``,
/// `k`, `M`, `G`, `T`, `P`, `E`) or a decimal exponent (`e3`, `E-2`).
///
/// Hand-written: k8s-openapi's `Quantity` is only the string, and the crates that parse
/// quantities pull in arbitrary-precision arithmetic a threshold comparison does not need.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let number_end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(s.len(), |(i, _)| i);
    let (number, suffix) = s.split_at(number_end);
    if number.is_empty() || number == "+" || number == "-" || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            10f64.powi(e)
        }
        _ => return None,
    };
    Some(value * factor)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_parse_as_kubernetes_writes_them() {
        for (text, value) in [
            ("500m", 0.5),
            ("2", 2.0),
            ("1.5", 1.5),
            ("2Gi", 2.0 * 1024f64.powi(3)),
            ("128Mi", 128.0 * 1024f64.powi(2)),
            ("1k", 1000.0),
            ("1e3", 1000.0),
            ("5E-1", 0.5),
            ("-1", -1.0),
        ] {
            assert_eq!(parse_quantity(text), Some(value), "{text}");
        }
        for bad in ["", "Gi", "1Xi", "1.", "1e", "abc", "1 Gi"] {
            assert_eq!(parse_quantity(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ordering_needs_values_of_the_declared_kind() {
        use Operator::*;
        let d = Some(CompareAs::Duration);
        assert_eq!(
            assertion_holds(LessOrEqual, d, Some(&json!("12s")), Some(&json!("30s"))),
            Ok(true)
        );
        assert_eq!(
            assertion_holds(LessOrEqual, d, Some(&json!("2m")), Some(&json!("30s"))),
            Ok(false)
        );
        // "1m" is a minute as a duration but a thousandth as a quantity.
        assert_eq!(
            assertion_holds(
                GreaterThan,
                Some(CompareAs::Quantity),
                Some(&json!("1m")),
                Some(&json!("0.5"))
            ),
            Ok(false)
        );
        assert_eq!(
            assertion_holds(
                GreaterThan,
                Some(CompareAs::Number),
                Some(&json!(3)),
                Some(&json!("2"))
            ),
            Ok(true)
        );
        let err =
            assertion_holds(LessThan, d, Some(&json!("soon")), Some(&json!("30s"))).unwrap_err();
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
        // An absent field satisfies no comparison.
        assert_eq!(
            assertion_holds(LessThan, d, None, Some(&json!("30s"))),
            Ok(false)
        );
    }

    #[test]
    fn existence_and_equality() {
        use Operator::*;
        assert_eq!(
            assertion_holds(Exists, None, Some(&json!("x")), None),
            Ok(true)
        );
        assert_eq!(
            assertion_holds(Exists, None, Some(&Value::Null), None),
            Ok(false)
        );
        assert_eq!(assertion_holds(NotExists, None, None, None), Ok(true));
        assert_eq!(
            assertion_holds(Equals, None, Some(&json!(true)), Some(&json!("true"))),
            Ok(true)
        );
        assert_eq!(
            assertion_holds(NotEquals, None, Some(&json!("a")), Some(&json!("b"))),
            Ok(true)
        );
    }
}
