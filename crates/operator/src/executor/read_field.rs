//! `readField` steps: GET an object, evaluate a field path, store the value under
//! `outputKey` in `.Values`.

use lifeboat_engine::{FieldPath, FieldPathError, ReadFieldAction};

use super::{StepFailure, StepInput, StepOutput};
use crate::api_errors::with_api_retries;

pub async fn execute(
    input: &StepInput<'_>,
    action: &ReadFieldAction,
) -> Result<StepOutput, StepFailure> {
    let target = input.resolve(&action.target).await?;
    let desc = &target.description;
    let obj = with_api_retries(|| target.api.get(&target.name))
        .await
        .map_err(|e| input.api_failure(&format!("cannot read {desc}"), &e))?;
    let doc = serde_json::to_value(&obj)
        .map_err(|e| StepFailure::permanent(format!("cannot encode {desc}: {e}")))?;
    let value = read(&action.field_path, &doc, desc)?;
    Ok(StepOutput {
        message: format!(
            "read {} of {desc} into .Values.{}",
            action.field_path, action.output_key
        ),
        values: [(action.output_key.clone(), value)].into(),
        ..Default::default()
    })
}

/// The value at `path` in `doc`; a missing (or null) field is an error naming the path and
/// the object, never an empty value.
pub fn read(
    path: &FieldPath,
    doc: &serde_json::Value,
    desc: &str,
) -> Result<serde_json::Value, StepFailure> {
    match path.get(doc) {
        Ok(serde_json::Value::Null) => Err(StepFailure::retryable(format!(
            "field {path} not found in {desc} (it is null)"
        ))),
        Ok(v) => Ok(v.clone()),
        Err(FieldPathError::NotFound { .. }) => Err(StepFailure::retryable(format!(
            "field {path} not found in {desc}"
        ))),
        Err(e) => Err(StepFailure::retryable(format!("{e} in {desc}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_fields_fail_with_the_path_and_object() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "img:1"}]}});
        let p = FieldPath::parse("spec.containers[0].image").unwrap();
        assert_eq!(
            read(&p, &doc, "pods default/my-pod").unwrap(),
            json!("img:1")
        );
        let p = FieldPath::parse("spec.x").unwrap();
        let err = read(&p, &doc, "pods default/my-pod").unwrap_err();
        assert_eq!(err.message, "field spec.x not found in pods default/my-pod");
        let p = FieldPath::parse("spec.containers[3].image").unwrap();
        let err = read(&p, &doc, "pods default/my-pod").unwrap_err();
        assert!(
            err.message.contains("pods default/my-pod"),
            "{}",
            err.message
        );
    }
}
