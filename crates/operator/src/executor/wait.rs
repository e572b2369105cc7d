//! `wait` steps: watch an object until a field satisfies a condition (exists, equals or
//! not equals a rendered value), within the step's timeout (default 5m).

use kube::api::DynamicObject;
use lifeboat_api::WaitCondition;
use lifeboat_engine::FieldPath;
use serde_json::Value;

use super::{StepFailure, StepInput, StepOutput, watch_until};
use crate::api_errors::with_api_retries;
use lifeboat_api::GoDuration;

/// Whether `actual` satisfies `condition` against `expected`. Equality is JSON equality, or
/// equality of the text forms when one side is a string (`"3"` equals `3`).
pub fn holds(condition: WaitCondition, actual: Option<&Value>, expected: Option<&Value>) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    match condition {
        WaitCondition::Exists => actual.is_some(),
        WaitCondition::Equals => match (actual, expected) {
            (Some(a), Some(e)) => loosely_equal(a, e),
            _ => false,
        },
        WaitCondition::NotEquals => match (actual, expected) {
            (Some(a), Some(e)) => !loosely_equal(a, e),
            (Some(_), None) => true,
            (None, _) => false,
        },
    }
}

fn loosely_equal(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    (a.is_string() || b.is_string()) && text(a) == text(b)
}

fn describe(condition: WaitCondition, expected: Option<&Value>) -> String {
    let shown = expected
        .map(Value::to_string)
        .unwrap_or_else(|| "null".into());
    match condition {
        WaitCondition::Exists => "exist".to_string(),
        WaitCondition::Equals => format!("equal {shown}"),
        WaitCondition::NotEquals => format!("differ from {shown}"),
    }
}

fn field_of(path: &FieldPath, obj: Option<&DynamicObject>) -> Option<Value> {
    let doc = serde_json::to_value(obj?).ok()?;
    path.get(&doc).ok().cloned()
}

pub async fn execute(input: &StepInput<'_>) -> Result<StepOutput, StepFailure> {
    let body = input
        .step
        .wait
        .as_ref()
        .ok_or_else(|| StepFailure::permanent("the step has type wait but no `wait` body"))?;
    let path =
        FieldPath::parse(&body.field_path).map_err(|e| StepFailure::permanent(e.to_string()))?;
    let expected = match &body.value {
        Some(v) => Some(input.render_leaves("the wait value", v)?),
        None => None,
    };
    let (api, name, desc) = input.object_api(&body.target).await?;
    let what = format!(
        "{path} of {desc} to {}",
        describe(body.condition, expected.as_ref())
    );

    if input.dry_run {
        let obj = with_api_retries(|| api.get_opt(&name))
            .await
            .map_err(|e| input.api_failure(&format!("cannot read {desc}"), &e))?;
        let actual = field_of(&path, obj.as_ref());
        let now = holds(body.condition, actual.as_ref(), expected.as_ref());
        return Ok(StepOutput {
            message: format!(
                "dry run: waiting for {what}: the condition {} now",
                if now { "holds" } else { "does not hold" }
            ),
            ..Default::default()
        });
    }

    let mut last: Option<Value> = None;
    let condition = body.condition;
    let waited = tokio::time::timeout(
        input.timeout,
        watch_until(api, &name, |obj: Option<&DynamicObject>| {
            last = field_of(&path, obj);
            holds(condition, last.as_ref(), expected.as_ref())
        }),
    )
    .await;
    match waited {
        Ok(Ok(_)) => Ok(StepOutput {
            message: format!("condition met: {what}"),
            ..Default::default()
        }),
        Ok(Err(e)) => Err(StepFailure::retryable(format!(
            "watching {desc} failed: {e}"
        ))),
        Err(_) => Err(StepFailure::retryable(format!(
            "timed out after {} waiting for {what} (last value: {})",
            GoDuration(input.timeout),
            last.map(|v| v.to_string())
                .unwrap_or_else(|| "absent".to_string())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions() {
        use WaitCondition::*;
        assert!(holds(Exists, Some(&json!("x")), None));
        assert!(!holds(Exists, None, None));
        assert!(!holds(Exists, Some(&Value::Null), None));
        assert!(holds(
            Equals,
            Some(&json!("10.0.0.5")),
            Some(&json!("10.0.0.5"))
        ));
        assert!(holds(Equals, Some(&json!(3)), Some(&json!("3"))));
        assert!(!holds(Equals, Some(&json!("a")), Some(&json!("b"))));
        assert!(holds(NotEquals, Some(&json!("a")), Some(&json!("b"))));
        assert!(!holds(NotEquals, None, Some(&json!("b"))));
        assert!(!holds(NotEquals, Some(&json!(true)), Some(&json!("true"))));
    }
}
