//! `patch` steps: set one field of an object, with a patch built by the engine
//! (`lifeboat_engine::build_patch`), idempotent by construction.
//!
//! The object is read first only when the patch needs it (a filter in a JSON Patch path, a
//! list element in a merge or strategic merge patch). A read-modify-write merge patch carries
//! the object's resourceVersion as precondition; on 409 the object is read again and the
//! patch rebuilt. The patch sent is recorded in the step's `rendered` status.

use kube::api::{Patch, PatchParams};
use lifeboat_api::PatchType;
use lifeboat_engine::{PatchAction, build_patch, needs_current_object};
use serde_json::{Value, json};

use super::{StepFailure, StepInput, StepOutput};
use crate::api_errors::with_api_retries;
use crate::writes::{self, Part};

/// How often a read-modify-write patch is rebuilt after a conflict.
const MAX_CONFLICT_RETRIES: u32 = 5;

/// The patch document to send: the built body plus, for read-modify-write, the
/// resourceVersion precondition.
pub fn body_with_precondition(body: Value, resource_version: Option<&str>) -> Value {
    match (body, resource_version) {
        (Value::Object(mut map), Some(rv)) => {
            let meta = map
                .entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(meta) = meta {
                meta.insert("resourceVersion".to_string(), Value::String(rv.to_string()));
            }
            Value::Object(map)
        }
        (body, _) => body,
    }
}

fn to_request(patch_type: PatchType, body: Value) -> Result<Patch<Value>, String> {
    Ok(match patch_type {
        PatchType::JsonPatch => Patch::Json(
            serde_json::from_value::<json_patch::Patch>(body)
                .map_err(|e| format!("the built JSON Patch is not valid: {e}"))?,
        ),
        PatchType::MergePatch => Patch::Merge(body),
        PatchType::StrategicMergePatch => Patch::Strategic(body),
    })
}

pub async fn execute(
    input: &StepInput<'_>,
    action: &PatchAction,
) -> Result<StepOutput, StepFailure> {
    let path = &action.field_path;
    let value = input.render_json("the patch value", &action.value)?;
    let target = input.resolve(&action.target).await?;
    let (api, name, desc) = (&target.api, &target.name, &target.description);
    let patch_type = action.patch_type;
    let needs_current = needs_current_object(patch_type, path);
    let pp = PatchParams {
        dry_run: input.dry_run,
        ..Default::default()
    };
    // The client and collection the patch is sent to (its answer is not decoded).
    let (client, url) = (api.clone().into_client(), api.resource_url());
    let mut conflicts = 0;
    loop {
        let current = if needs_current {
            let obj = with_api_retries(|| api.get(name))
                .await
                .map_err(|e| input.api_failure(&format!("cannot read {desc}"), &e))?;
            Some(
                serde_json::to_value(&obj)
                    .map_err(|e| StepFailure::permanent(format!("cannot encode {desc}: {e}")))?,
            )
        } else {
            None
        };
        let built = build_patch(
            patch_type,
            path,
            value.clone(),
            current.as_ref(),
            &action.target.api_version,
        )
        .map_err(|e| StepFailure::permanent(format!("cannot patch {desc}: {e}")))?;
        let sent = body_with_precondition(built.body, built.resource_version.as_deref());
        let rendered = Some(json!({
            "patchType": built.patch_type.content_type(),
            "patch": sent.clone(),
        }));
        let request = to_request(built.patch_type, sent).map_err(StepFailure::permanent)?;
        match with_api_retries(|| writes::patch(&client, url, name, Part::Object, &pp, &request))
            .await
        {
            Ok(_) => {
                let message = if input.dry_run {
                    format!("dry run: {path} of {desc} would be set (sent with dryRun=All)")
                } else {
                    format!("set {path} of {desc}")
                };
                return Ok(StepOutput {
                    message,
                    rendered,
                    ..Default::default()
                });
            }
            Err(kube::Error::Api(s))
                if s.code == 409
                    && built.resource_version.is_some()
                    && conflicts < MAX_CONFLICT_RETRIES =>
            {
                conflicts += 1;
                tracing::debug!(object = %desc, conflicts, "patch precondition failed; re-reading");
            }
            Err(e) => {
                return Err(input
                    .api_failure(&format!("cannot patch {desc}"), &e)
                    .with_rendered(rendered));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_modify_write_carries_the_resource_version() {
        let body = json!({"spec": {"ports": [{"port": 1}]}});
        assert_eq!(
            body_with_precondition(body.clone(), Some("42")),
            json!({"spec": {"ports": [{"port": 1}]}, "metadata": {"resourceVersion": "42"}})
        );
        assert_eq!(body_with_precondition(body.clone(), None), body);
        let jp = json!([{"op": "replace", "path": "/a", "value": 1}]);
        assert_eq!(body_with_precondition(jp.clone(), Some("1")), jp);
    }

    #[test]
    fn built_json_patches_become_requests() {
        let jp = json!([{"op": "replace", "path": "/spec/containers/1/image", "value": "x"}]);
        assert!(matches!(
            to_request(PatchType::JsonPatch, jp).unwrap(),
            Patch::Json(_)
        ));
        assert!(to_request(PatchType::JsonPatch, json!({"not": "a list"})).is_err());
    }
}
