//! `job` steps: run a Kubernetes Job from a rendered PodTemplateSpec and wait for it.
//!
//! The Job's name is `naming::job_name_in_attempt(run, index, attempt)`, so executing the step again (after a
//! crash, or a second executor) adopts the existing Job instead of creating a second one.
//! A retry after the Job failed deletes the failed Job first and creates it again.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use lifeboat_api::LABEL_RUN;
use serde_json::Value;

use lifeboat_engine::JobAction;

use super::{StepFailure, StepInput, StepOutput, watch_until};
use crate::api_errors::with_api_retries;
use crate::naming;

/// How a Job ended.
#[derive(Debug, Clone, PartialEq)]
enum JobState {
    Running,
    Complete,
    Failed(String),
}

fn job_state(job: &Job) -> JobState {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    for c in conditions {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => return JobState::Complete,
            "Failed" => {
                let reason = c.reason.clone().unwrap_or_else(|| "Failed".to_string());
                let detail = match &c.message {
                    Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                    _ => reason,
                };
                return JobState::Failed(detail);
            }
            _ => {}
        }
    }
    JobState::Running
}

/// How long a finished step Job (and its pods, with their logs) is kept before the job
/// controller's TTL deletes it. The outcome lives on in the run's status; the week covers
/// a controller outage, during which a finished Job must still be there to read the
/// step's outcome from, and leaves time to read the logs (`lifeboat runs logs`).
pub const JOB_TTL_AFTER_FINISHED_SECONDS: i32 = 7 * 24 * 3600;

/// Builds the Job for a step from its rendered template.
pub fn build_job(
    name: &str,
    namespace: &str,
    run_name: &str,
    template: Value,
    backoff_limit: i32,
    extra_labels: &BTreeMap<String, String>,
    active_deadline_seconds: i64,
) -> Result<Job, String> {
    let mut template: PodTemplateSpec = serde_json::from_value(template)
        .map_err(|e| format!("the job template is not a valid PodTemplateSpec: {e}"))?;
    let pod_spec = template
        .spec
        .as_mut()
        .ok_or("the job template has no `spec`")?;
    if pod_spec.restart_policy.is_none() {
        pod_spec.restart_policy = Some("Never".to_string());
    }
    let mut labels = extra_labels.clone();
    labels.insert(LABEL_RUN.to_string(), naming::sanitize(run_name, 63));
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        spec: Some(JobSpec {
            template,
            backoff_limit: Some(backoff_limit),
            active_deadline_seconds: Some(active_deadline_seconds.max(1)),
            ttl_seconds_after_finished: Some(JOB_TTL_AFTER_FINISHED_SECONDS),
            ..Default::default()
        }),
        status: None,
    })
}

pub async fn execute(input: &StepInput<'_>, action: &JobAction) -> Result<StepOutput, StepFailure> {
    let template = input.render_json("the job template", &action.template)?;
    let namespace = match &action.namespace {
        Some(ns) => input.render("the job namespace", ns)?,
        None => input.run_namespace(),
    };
    let run_name = input.run_name();
    let name = naming::job_name_in_attempt(&run_name, input.index, input.run_attempt());
    let deadline = i64::try_from(input.step.timeout.as_secs()).unwrap_or(i64::MAX);
    let job = build_job(
        &name,
        &namespace,
        &run_name,
        template,
        action.backoff_limit,
        &action.labels,
        deadline,
    )
    .map_err(StepFailure::permanent)?;
    let rendered = serde_json::to_value(&job).ok();
    let job_name = Some(name.clone());
    let fail = |f: StepFailure| f.with_rendered(rendered.clone()).with_job(job_name.clone());
    let what = format!("Job {namespace}/{name}");
    let api: Api<Job> = Api::namespaced(input.client.clone(), &namespace);

    if input.dry_run {
        let pp = PostParams {
            dry_run: true,
            ..Default::default()
        };
        with_api_retries(|| api.create(&pp, &job))
            .await
            .map_err(|e| fail(input.api_failure(&format!("cannot create {what}"), &e)))?;
        return Ok(StepOutput {
            message: format!("dry run: Job would be created ({what})"),
            rendered,
            job_name,
            ..Default::default()
        });
    }

    let mut current = create_or_adopt(input, &api, &job, &what)
        .await
        .map_err(fail)?;
    if input.attempt > 1 && matches!(job_state(&current), JobState::Failed(_)) {
        // A retry of a failed Job: remove the failed one, then create it again.
        recreate(input, &api, &name, &what, &current)
            .await
            .map_err(fail)?;
        current = create_or_adopt(input, &api, &job, &what)
            .await
            .map_err(fail)?;
    }

    let finished = match job_state(&current) {
        JobState::Running => {
            let seen = watch_until(api.clone(), &name, |j: Option<&Job>| match j {
                Some(j) => job_state(j) != JobState::Running,
                None => true,
            })
            .await
            .map_err(|e| fail(StepFailure::retryable(format!("watching {what}: {e}"))))?;
            match seen {
                Some(j) => job_state(&j),
                None => {
                    return Err(fail(StepFailure::retryable(format!(
                        "{what} was deleted before it finished"
                    ))));
                }
            }
        }
        state => state,
    };
    match finished {
        JobState::Complete => Ok(StepOutput {
            message: format!("{what} completed"),
            rendered,
            job_name,
            ..Default::default()
        }),
        JobState::Failed(detail) => Err(fail(StepFailure::retryable(format!(
            "{what} failed: {detail}"
        )))),
        JobState::Running => Err(fail(StepFailure::retryable(format!(
            "{what} did not finish"
        )))),
    }
}

/// Creates the Job, or returns the existing one of the same name.
async fn create_or_adopt(
    input: &StepInput<'_>,
    api: &Api<Job>,
    job: &Job,
    what: &str,
) -> Result<Job, StepFailure> {
    let pp = PostParams::default();
    match with_api_retries(|| api.create(&pp, job)).await {
        Ok(j) => Ok(j),
        Err(kube::Error::Api(s)) if s.is_already_exists() => {
            let name = job.metadata.name.clone().unwrap_or_default();
            let existing = with_api_retries(|| api.get_opt(&name))
                .await
                .map_err(|e| input.api_failure(&format!("cannot read {what}"), &e))?;
            match existing {
                Some(j) => {
                    tracing::info!(job = %what, "adopted existing Job");
                    Ok(j)
                }
                None => Err(StepFailure::retryable(format!(
                    "{what} disappeared while being adopted"
                ))),
            }
        }
        Err(e) => Err(input.api_failure(&format!("cannot create {what}"), &e)),
    }
}

/// Deletes a failed Job (and its pods) and waits until it is gone.
async fn recreate(
    input: &StepInput<'_>,
    api: &Api<Job>,
    name: &str,
    what: &str,
    current: &Job,
) -> Result<(), StepFailure> {
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match with_api_retries(|| api.delete(name, &dp)).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(input.api_failure(&format!("cannot delete failed {what}"), &e)),
    }
    let uid = current.metadata.uid.clone();
    watch_until(api.clone(), name, |j: Option<&Job>| match j {
        None => true,
        Some(j) => j.metadata.uid != uid,
    })
    .await
    .map_err(|e| StepFailure::retryable(format!("waiting for the deletion of {what}: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_from_the_seed_template() {
        let template = json!({"spec": {"containers": [{"name": "n", "image": "busybox",
            "command": ["sh", "-c", "echo hi"]}], "restartPolicy": "OnFailure"}});
        let job = build_job("j", "ns", "run-1", template, 0, &BTreeMap::new(), 600).unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        assert_eq!(spec.active_deadline_seconds, Some(600));
        assert_eq!(spec.ttl_seconds_after_finished, Some(604_800));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("OnFailure"));
        assert_eq!(
            pod.containers[0].command.as_deref().unwrap(),
            ["sh", "-c", "echo hi"]
        );
        assert_eq!(
            job.metadata
                .labels
                .unwrap()
                .get(LABEL_RUN)
                .map(String::as_str),
            Some("run-1")
        );
    }

    #[test]
    fn restart_policy_defaults_to_never_and_bad_templates_are_rejected() {
        let template = json!({"spec": {"containers": [{"name": "n", "image": "x"}]}});
        let job = build_job("j", "ns", "r", template, 2, &BTreeMap::new(), 5).unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(2));
        assert_eq!(
            spec.template.spec.unwrap().restart_policy.as_deref(),
            Some("Never")
        );
        let err = build_job(
            "j",
            "ns",
            "r",
            json!({"metadata": {}}),
            0,
            &BTreeMap::new(),
            5,
        )
        .unwrap_err();
        assert!(err.contains("no `spec`"), "{err}");
        let err = build_job(
            "j",
            "ns",
            "r",
            json!({"spec": {"containers": "nope"}}),
            0,
            &BTreeMap::new(),
            5,
        )
        .unwrap_err();
        assert!(err.contains("not a valid PodTemplateSpec"), "{err}");
    }

    #[test]
    fn failed_condition_reason_and_message_are_reported() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Failed", "status": "True",
                "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}
        }))
        .unwrap();
        assert_eq!(
            job_state(&job),
            JobState::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
        let job: Job = serde_json::from_value(json!({"metadata": {"name": "j"},
            "status": {"conditions": [{"type": "Complete", "status": "True"}]}}))
        .unwrap();
        assert_eq!(job_state(&job), JobState::Complete);
    }
}
