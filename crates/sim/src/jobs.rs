//! A built-in Job controller: runs each Job's pod to completion or failure.
//!
//! Per Job (or its pod template), the annotations `sim.lifeboat.dev/outcome: Complete|Fail`
//! (default `Complete`) and `sim.lifeboat.dev/duration: 300ms` (default 100ms) decide what
//! each pod does. Failed pods are retried until `spec.backoffLimit` is exceeded;
//! `spec.activeDeadlineSeconds` fails the Job with `DeadlineExceeded`.
//!
//! Each attempt is one pod, made as the real job controller makes it: named after the Job
//! (`generateName: <job>-`), owned by it, with the template's spec, annotations and labels
//! (kube-apiserver added `batch.kubernetes.io/job-name`, `job-name`,
//! `batch.kubernetes.io/controller-uid` and `controller-uid` to the template). A pod's
//! `sim.lifeboat.dev/log` annotation, from the template, is what its log subresource
//! serves.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::cluster::Cluster;
use crate::object::{now_rfc3339, random_suffix};
use crate::store::EventType;

/// Annotation choosing the outcome of a Job's pods.
pub const OUTCOME_ANNOTATION: &str = "sim.lifeboat.dev/outcome";
/// Annotation choosing how long each pod runs.
pub const DURATION_ANNOTATION: &str = "sim.lifeboat.dev/duration";
/// The simulated output of a pod's containers ([`crate::kinds`] serves it as the pod log).
pub use crate::kinds::LOG_ANNOTATION;

const JOBS: &str = "batch/jobs";
const PODS: &str = "/pods";

/// Parse the duration annotation (Go's syntax: `300ms`, `2s`, `1m`, `1.5s`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    s.parse::<lifeboat_api::GoDuration>()
        .ok()
        .map(Duration::from)
}

fn annotation<'a>(job: &'a Value, key: &str) -> Option<&'a str> {
    job["metadata"]["annotations"][key]
        .as_str()
        .or_else(|| job["spec"]["template"]["metadata"]["annotations"][key].as_str())
}

/// Start the controller of one cluster.
pub fn spawn_controller(cluster: Arc<Cluster>) {
    let mut rx = cluster
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .store
        .subscribe();
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = cluster.shutdown.cancelled() => return,
                m = rx.recv() => m,
            };
            let jobs: Vec<(String, String, String)> = match msg {
                Ok(c) if c.storage == JOBS && c.type_ == EventType::Added => vec![(
                    c.namespace.clone(),
                    c.object["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    c.object["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )],
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => {
                    // Missed events: pick up every Job that has not started.
                    let st = cluster
                        .state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    st.store
                        .list(JOBS, None)
                        .filter(|j| j["status"]["startTime"].is_null())
                        .map(|j| {
                            (
                                j["metadata"]["namespace"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                                j["metadata"]["name"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                                j["metadata"]["uid"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_string(),
                            )
                        })
                        .collect()
                }
                Err(RecvError::Closed) => return,
            };
            for (ns, name, uid) in jobs {
                let fresh = running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(uid.clone());
                if fresh {
                    let c = cluster.clone();
                    let r = running.clone();
                    tokio::spawn(async move {
                        run_job(&c, &ns, &name, &uid).await;
                        r.lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .remove(&uid);
                    });
                }
            }
        }
    });
}

/// Modify the Job if it still exists with this uid; `false` when it is gone.
fn update_job(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    uid: &str,
    f: impl FnOnce(&mut Value),
) -> bool {
    let mut st = cluster
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(mut job) = st.store.get(JOBS, ns, name).cloned() else {
        return false;
    };
    if job["metadata"]["uid"] != uid {
        return false;
    }
    let before = job.clone();
    f(&mut job);
    if job != before {
        st.store.put(JOBS, job);
    }
    true
}

fn update_pod(cluster: &Cluster, ns: &str, name: &str, f: impl FnOnce(&mut Value)) {
    let mut st = cluster
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(mut pod) = st.store.get(PODS, ns, name).cloned() {
        f(&mut pod);
        st.store.put(PODS, pod);
    }
}

fn condition(type_: &str, reason: &str, message: &str) -> Value {
    let now = now_rfc3339();
    json!({
        "type": type_, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": now,
    })
}

fn finish_pod(pod: &mut Value, ok: bool, reason: &str) {
    let now = now_rfc3339();
    pod["status"]["phase"] = json!(if ok { "Succeeded" } else { "Failed" });
    if !ok && !reason.is_empty() {
        pod["status"]["reason"] = json!(reason);
    }
    let exit = i32::from(!ok);
    if let Some(cs) = pod["status"]["containerStatuses"].as_array_mut() {
        for c in cs.iter_mut().filter(|c| c.is_object()) {
            c["ready"] = json!(false);
            c["started"] = json!(false);
            c["state"] = json!({"terminated": {
                "exitCode": exit, "reason": if ok { "Completed" } else { "Error" },
                "startedAt": c["state"]["running"]["startedAt"].clone(), "finishedAt": now,
            }});
        }
    }
    pod["status"]["conditions"] = json!([
        {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
    ]);
}

/// Record a core/v1 Event about the Job, as the job controller does.
fn event(
    cluster: &Cluster,
    ns: &str,
    job: &str,
    uid: &str,
    type_: &str,
    reason: &str,
    message: &str,
) {
    let now = now_rfc3339();
    let obj = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{job}.{:016x}", rand::random::<u64>()),
            "namespace": ns,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": now,
        },
        "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "namespace": ns, "name": job, "uid": uid},
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": "job-controller"},
        "reportingComponent": "job-controller",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    cluster
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .store
        .put("/events", obj);
}

/// Create one pod of the Job; returns its name.
fn create_pod(cluster: &Cluster, job: &Value) -> Option<String> {
    let ns = job["metadata"]["namespace"].as_str()?;
    let job_name = job["metadata"]["name"].as_str()?;
    let mut st = cluster
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut name;
    loop {
        name = format!("{job_name}-{}", random_suffix());
        if st.store.get(PODS, ns, &name).is_none() {
            break;
        }
    }
    let template = &job["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["name"] = json!(name);
    metadata["namespace"] = json!(ns);
    metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
    metadata["creationTimestamp"] = json!(now_rfc3339());
    metadata["generateName"] = json!(format!("{job_name}-"));
    metadata["ownerReferences"] = json!([{
        "apiVersion": "batch/v1", "kind": "Job", "name": job_name,
        "uid": job["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true,
    }]);
    let now = now_rfc3339();
    let statuses: Vec<Value> = template["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({
                        "name": c["name"], "image": c["image"], "ready": true, "started": true,
                        "restartCount": 0, "state": {"running": {"startedAt": now}},
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template["spec"],
        "status": {
            "phase": "Running",
            "startTime": now,
            "podIP": "10.244.0.20",
            "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": statuses,
        },
    });
    let mut pod = pod;
    pod["metadata"]["generation"] = json!(1);
    st.store.put(PODS, pod);
    Some(name)
}

async fn run_job(cluster: &Arc<Cluster>, ns: &str, name: &str, uid: &str) {
    let job = {
        let st = cluster
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.store.get(JOBS, ns, name).cloned()
    };
    let Some(job) = job else { return };
    let fail = annotation(&job, OUTCOME_ANNOTATION).is_some_and(|o| o.eq_ignore_ascii_case("fail"));
    let duration = annotation(&job, DURATION_ANNOTATION)
        .and_then(parse_duration)
        .unwrap_or(Duration::from_millis(100));
    let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
    let deadline = job["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let started = now_rfc3339();
    let mut failed = 0i64;
    loop {
        let Some(pod) = create_pod(cluster, &job) else {
            return;
        };
        event(
            cluster,
            ns,
            name,
            uid,
            "Normal",
            "SuccessfulCreate",
            &format!("Created pod: {pod}"),
        );
        let alive = update_job(cluster, ns, name, uid, |j| {
            if j["status"]["startTime"].is_null() {
                j["status"]["startTime"] = json!(started);
            }
            j["status"]["active"] = json!(1);
            j["status"]["ready"] = json!(1);
            j["status"]["terminating"] = json!(0);
            j["status"]["uncountedTerminatedPods"] = json!({});
        });
        if !alive {
            return;
        }
        let timed_out = tokio::select! {
            _ = cluster.shutdown.cancelled() => return,
            _ = tokio::time::sleep(duration) => false,
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => true,
        };
        if timed_out {
            update_pod(cluster, ns, &pod, |p| {
                finish_pod(p, false, "DeadlineExceeded")
            });
            update_job(cluster, ns, name, uid, |j| {
                j["status"]["active"] = json!(0);
                j["status"]["ready"] = json!(0);
                j["status"]["failed"] = json!(failed + 1);
                j["status"]["conditions"] = json!([
                    condition(
                        "FailureTarget",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline"
                    ),
                    condition(
                        "Failed",
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline"
                    ),
                ]);
            });
            event(
                cluster,
                ns,
                name,
                uid,
                "Warning",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
            );
            return;
        }
        if !fail {
            update_pod(cluster, ns, &pod, |p| finish_pod(p, true, ""));
            update_job(cluster, ns, name, uid, |j| {
                j["status"]["active"] = json!(0);
                j["status"]["ready"] = json!(0);
                j["status"]["succeeded"] = json!(1);
                j["status"]["completionTime"] = json!(now_rfc3339());
                j["status"]["conditions"] = json!([
                    condition(
                        "SuccessCriteriaMet",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods"
                    ),
                    condition(
                        "Complete",
                        "CompletionsReached",
                        "Reached expected number of succeeded pods"
                    ),
                ]);
            });
            event(
                cluster,
                ns,
                name,
                uid,
                "Normal",
                "Completed",
                "Job completed",
            );
            return;
        }
        update_pod(cluster, ns, &pod, |p| finish_pod(p, false, ""));
        failed += 1;
        if failed > backoff_limit {
            update_job(cluster, ns, name, uid, |j| {
                j["status"]["active"] = json!(0);
                j["status"]["ready"] = json!(0);
                j["status"]["failed"] = json!(failed);
                j["status"]["conditions"] = json!([
                    condition(
                        "FailureTarget",
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit"
                    ),
                    condition(
                        "Failed",
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit"
                    ),
                ]);
            });
            event(
                cluster,
                ns,
                name,
                uid,
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
            return;
        }
        let alive = update_job(cluster, ns, name, uid, |j| {
            j["status"]["failed"] = json!(failed);
        });
        if !alive {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration("5"), None);
    }
}
