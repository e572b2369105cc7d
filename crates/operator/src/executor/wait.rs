//! `wait` steps: watch an object until a field satisfies a condition (exists, equals or
//! not equals a rendered value), within the step's timeout (default 5m).

use kube::api::DynamicObject;
use lifeboat_api::{GoDuration, WaitCondition};
use lifeboat_engine::{FieldPath, WaitAction, wait_satisfied};
use serde_json::Value;

use super::{StepFailure, StepInput, StepOutput, watch_until};
use crate::api_errors::with_api_retries;

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

pub async fn execute(
    input: &StepInput<'_>,
    action: &WaitAction,
) -> Result<StepOutput, StepFailure> {
    let path = &action.field_path;
    let expected = match &action.expected {
        Some(v) => Some(input.render_json("the wait value", v)?),
        None => None,
    };
    let target = input.resolve(&action.target).await?;
    let (api, name, desc) = (target.api, &target.name, &target.description);
    let condition = action.condition;
    let what = format!(
        "{path} of {desc} to {}",
        describe(condition, expected.as_ref())
    );

    if input.dry_run {
        let obj = with_api_retries(|| api.get_opt(name))
            .await
            .map_err(|e| input.api_failure(&format!("cannot read {desc}"), &e))?;
        let actual = field_of(path, obj.as_ref());
        let now = wait_satisfied(condition, actual.as_ref(), expected.as_ref());
        return Ok(StepOutput {
            message: format!(
                "dry run: waiting for {what}: the condition {} now",
                if now { "holds" } else { "does not hold" }
            ),
            ..Default::default()
        });
    }

    let mut last: Option<Value> = None;
    let waited = tokio::time::timeout(
        input.step.timeout,
        watch_until(api, name, |obj: Option<&DynamicObject>| {
            last = field_of(path, obj);
            wait_satisfied(condition, last.as_ref(), expected.as_ref())
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
            GoDuration(input.step.timeout),
            last.map(|v| v.to_string())
                .unwrap_or_else(|| "absent".to_string())
        ))),
    }
}
