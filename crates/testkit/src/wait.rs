//! Waiting for an object's state: through the API (a watch), with a deadline, and a
//! failure message that shows the object and what the caller knows of the controller.

use std::time::Duration;

use kube::Client;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use lifeboat_api::{ReceivedAlert, RecoveryPlan, RecoveryRun, StepPhase};

/// How long any wait of a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Describes the controller under test for failure messages (its log, for a process).
pub type Diag<'a> = &'a dyn Fn() -> String;

/// No description (an in-process controller logs to the test's output).
pub fn no_diag() -> String {
    String::new()
}

/// Polls `check` until it returns `Some`, or fails after [`DEADLINE`] naming `what`.
/// For conditions over several objects that no single watch covers.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (until [`DEADLINE`]) for `cond` to hold on object `name`; watch errors (injected
/// faults) restart the watch. `None` on timeout.
pub async fn await_object<K>(
    api: Api<K>,
    name: &str,
    cond: impl Fn(Option<&K>) -> bool + Clone,
) -> Option<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, await_condition(api.clone(), name, cond.clone())).await {
            Ok(Ok(Some(obj))) => return Some(obj),
            Ok(Ok(None)) => return None,
            Ok(Err(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// Waits until `cond` holds for the object and returns it; panics with the object's current
/// state and `diag()` when it does not within [`DEADLINE`].
pub async fn wait_for_state<K>(
    api: Api<K>,
    name: &str,
    what: &str,
    cond: impl Fn(Option<&K>) -> bool + Clone,
    diag: Diag<'_>,
) -> K
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Send
        + 'static,
{
    match await_object(api.clone(), name, cond).await {
        Some(obj) => obj,
        None => {
            let current = api.get_opt(name).await.ok().flatten();
            panic!(
                "{name}: {what} within {DEADLINE:?}; current state: {}\n{}",
                serde_json::to_string_pretty(&current).unwrap(),
                diag()
            )
        }
    }
}

/// Waits until the run has finished (Completed or Failed) and returns it.
pub async fn wait_run_finished(
    client: &Client,
    namespace: &str,
    name: &str,
    diag: Diag<'_>,
) -> RecoveryRun {
    let cond = |r: Option<&RecoveryRun>| {
        r.and_then(|r| r.status.as_ref())
            .is_some_and(|s| s.phase.is_finished())
    };
    let api = Api::namespaced(client.clone(), namespace);
    wait_for_state(api, name, "run did not finish", cond, diag).await
}

/// Waits until the alert has been processed and returns it.
pub async fn wait_alert_processed(
    client: &Client,
    namespace: &str,
    name: &str,
    diag: Diag<'_>,
) -> ReceivedAlert {
    let cond = |a: Option<&ReceivedAlert>| {
        a.and_then(|a| a.status.as_ref())
            .is_some_and(|s| s.processed)
    };
    let api = Api::namespaced(client.clone(), namespace);
    wait_for_state(api, name, "alert not processed", cond, diag).await
}

/// Waits until the plan's status has a validation result for its current generation.
pub async fn wait_plan_validated(
    client: &Client,
    namespace: &str,
    name: &str,
    diag: Diag<'_>,
) -> RecoveryPlan {
    let cond = |p: Option<&RecoveryPlan>| {
        p.is_some_and(|p| {
            p.status.as_ref().is_some_and(|s| {
                s.validation.is_some() && s.observed_generation == p.metadata.generation
            })
        })
    };
    let api = Api::namespaced(client.clone(), namespace);
    wait_for_state(api, name, "plan not validated", cond, diag).await
}

/// Waits until step `index` of the run is Running.
pub async fn wait_step_running(client: &Client, name: &str, index: usize, diag: Diag<'_>) {
    let api: Api<RecoveryRun> = Api::namespaced(client.clone(), "default");
    let cond = move |r: Option<&RecoveryRun>| {
        r.and_then(|r| r.status.as_ref())
            .and_then(|s| s.steps.get(index))
            .is_some_and(|s| s.phase == StepPhase::Running)
    };
    let what = format!("step {index} never started");
    wait_for_state(api, name, &what, cond, diag).await;
}
