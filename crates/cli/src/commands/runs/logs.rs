//! `lifeboat runs logs RUN [--step N]`: the logs of the pods of a run's Job steps, found
//! as kubectl finds a Job's pods (by the `batch.kubernetes.io/job-name` label).

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, LogParams};
use lifeboat_api::{RecoveryRun, StepType};

use crate::commands::{EXIT_OK, KubeContext};

/// The label the job controller puts on a Job's pods.
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// One Job step whose pods' logs are printed.
struct JobOfStep {
    number: usize,
    job: String,
    namespace: String,
}

/// Prints the logs of the Job steps of `run` (the one `step` names, counted from 1).
pub async fn print(
    client: kube::Client,
    run_ns: &str,
    run: &RecoveryRun,
    step: Option<usize>,
) -> anyhow::Result<u8> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let jobs = jobs_of(run, run_ns, step)?;
    if jobs.is_empty() {
        println!("RecoveryRun {run_ns}/{run_name} has not created a Job yet.");
        return Ok(EXIT_OK);
    }
    for j in &jobs {
        let pods: Api<Pod> = Api::namespaced(client.clone(), &j.namespace);
        let mut found = pods
            .list(&ListParams::default().labels(&format!("{JOB_NAME_LABEL}={}", j.job)))
            .await
            .kube_context(|| format!("cannot list the pods of Job {}/{}", j.namespace, j.job))?
            .items;
        found.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        if found.is_empty() {
            println!(
                "==> step {} (Job {}/{}): no pods (deleted, or not started yet) <==",
                j.number, j.namespace, j.job
            );
            continue;
        }
        for pod in &found {
            let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
            let containers: Vec<String> = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
                .collect();
            for container in &containers {
                println!(
                    "==> step {} (Job {}/{}) pod {pod_name} container {container} <==",
                    j.number, j.namespace, j.job
                );
                let params = LogParams {
                    container: Some(container.clone()),
                    ..LogParams::default()
                };
                let text = pods.logs(pod_name, &params).await.kube_context(|| {
                    format!("cannot read the logs of pod {}/{pod_name}", j.namespace)
                })?;
                print!("{text}");
                if !text.is_empty() && !text.ends_with('\n') {
                    println!();
                }
            }
        }
    }
    Ok(EXIT_OK)
}

/// The Jobs the run's job steps created (all, or the one `step` names), with their
/// namespaces. A step that ran in another registered cluster is refused with the command
/// that reads it there: its pods are not in the cluster this command talks to.
fn jobs_of(run: &RecoveryRun, run_ns: &str, step: Option<usize>) -> anyhow::Result<Vec<JobOfStep>> {
    let run_name = run.metadata.name.as_deref().unwrap_or_default();
    let statuses = run
        .status
        .as_ref()
        .map(|s| s.steps.as_slice())
        .unwrap_or_default();
    if let Some(n) = step {
        let Some(spec) = n.checked_sub(1).and_then(|i| run.spec.steps.get(i)) else {
            anyhow::bail!(
                "RecoveryRun {run_ns}/{run_name} has {} step(s); there is no step {n}",
                run.spec.steps.len()
            );
        };
        if spec.type_ != StepType::Job {
            anyhow::bail!(
                "step {n} of RecoveryRun {run_ns}/{run_name} is a {} step: only job steps have logs",
                spec.type_
            );
        }
    }
    let mut jobs = Vec::new();
    for (i, spec) in run.spec.steps.iter().enumerate() {
        let number = i + 1;
        if spec.type_ != StepType::Job || step.is_some_and(|n| n != number) {
            continue;
        }
        let Some(job) = statuses.get(i).and_then(|s| s.job_name.clone()) else {
            continue;
        };
        if let Some(cluster) = &spec.cluster {
            anyhow::bail!(
                "step {number} ran in the registered cluster {cluster:?}: read its logs there, \
                 e.g. `kubectl --context <{cluster}'s context> logs -n <namespace> job/{job}`"
            );
        }
        // A templated namespace was rendered when the Job was created; the Job carries
        // the run's namespace unless the plan set a literal one.
        let namespace = spec
            .job
            .as_ref()
            .and_then(|j| j.namespace.clone())
            .filter(|ns| !ns.contains("{{"))
            .unwrap_or_else(|| run_ns.to_string());
        jobs.push(JobOfStep {
            number,
            job,
            namespace,
        });
    }
    Ok(jobs)
}
