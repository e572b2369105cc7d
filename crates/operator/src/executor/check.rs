//! `check` steps (guards): evaluate every assertion, record what was observed as the
//! step's evidence, and stop the run (`Aborted`) unless all hold. A check changes nothing,
//! so it is evaluated for real in a dry run too.
//!
//! An assertion that cannot be evaluated (the object cannot be read, the values cannot be
//! compared, the cluster is not registered) does not hold: a guard that cannot verify its
//! evidence must not let a failover through. In particular a cluster counts as
//! `Unreachable` only when lifeboat tried and could not reach it, never because it is
//! misconfigured.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use lifeboat_api::{ClusterState, Evidence, LABEL_ALERT, ReceivedAlert};
use lifeboat_engine::{
    CheckAction, CheckAssertion, FieldCheck, ProbeCheck, ProbeKind, assertion_holds,
};
use serde_json::Value;

use super::{StepFailure, StepInput, StepOutput};
use crate::api_errors::{is_connection_error, with_api_retries};
use crate::clusters::display_cluster;

/// How long a reachability probe waits for `/readyz`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn execute(
    input: &StepInput<'_>,
    action: &CheckAction,
) -> Result<StepOutput, StepFailure> {
    let deadline = tokio::time::Instant::now() + input.step.timeout;
    loop {
        let mut evidence = Vec::with_capacity(action.assertions.len());
        for assertion in &action.assertions {
            evidence.push(evaluate(input, assertion).await);
        }
        let Some(failed) = evidence.iter().find(|e| !e.passed) else {
            return Ok(StepOutput {
                message: format!("all {} assertion(s) hold", evidence.len()),
                evidence,
                ..Default::default()
            });
        };
        let message = format!(
            "check failed: {} (observed: {})",
            failed.assertion, failed.observed
        );
        match action.poll_interval {
            Some(every) if tokio::time::Instant::now() + every < deadline => {
                tracing::debug!(%message, "check does not hold yet; polling");
                tokio::time::sleep(every).await;
            }
            _ => return Err(StepFailure::abort(message).with_evidence(evidence)),
        }
    }
}

/// One assertion, as evidence.
async fn evaluate(input: &StepInput<'_>, assertion: &CheckAssertion) -> Evidence {
    match assertion {
        CheckAssertion::Probe(p) => probe(input, p).await,
        CheckAssertion::Quorum { name, required, of } => {
            let mut seen = Vec::with_capacity(of.len());
            for p in of {
                seen.push(probe(input, p).await);
            }
            let held = seen.iter().filter(|e| e.passed).count();
            let details: Vec<String> = seen
                .iter()
                .map(|e| {
                    format!(
                        "{} {}: {}",
                        if e.passed { "✓" } else { "✗" },
                        e.assertion,
                        e.observed
                    )
                })
                .collect();
            Evidence {
                assertion: name.clone(),
                passed: held >= *required as usize,
                observed: format!(
                    "{held} of {} hold, {required} required [{}]",
                    of.len(),
                    details.join("; ")
                ),
            }
        }
    }
}

async fn probe(input: &StepInput<'_>, p: &ProbeCheck) -> Evidence {
    let (passed, observed) = match &p.kind {
        ProbeKind::Field(f) => field(input, f).await,
        ProbeKind::Cluster { cluster, state } => {
            reachability(input, cluster.as_deref(), *state).await
        }
        ProbeKind::AlertFiring(firing) => alert(input, *firing).await,
    };
    Evidence {
        assertion: p.name.clone(),
        passed,
        observed,
    }
}

/// Reads the field and compares it; `(held, observed value or why not)`.
async fn field(input: &StepInput<'_>, f: &FieldCheck) -> (bool, String) {
    let result: Result<(bool, String), String> = async {
        let cluster = f.cluster.as_deref().or(input.step.cluster.as_deref());
        let client = input.client_on(cluster).await.map_err(|e| e.message)?;
        let target = input
            .resolve_on(&f.target, cluster, client)
            .await
            .map_err(|e| e.message)?;
        let expected = match &f.expected {
            Some(t) => Some(
                input
                    .render_json("the expected value", t)
                    .map_err(|e| e.message)?,
            ),
            None => None,
        };
        let obj = with_api_retries(|| target.api.get_opt(&target.name))
            .await
            .map_err(|e| format!("cannot read {}: {e}", target.description))?;
        let actual = match obj {
            None => None,
            Some(o) => {
                let doc = serde_json::to_value(&o).map_err(|e| e.to_string())?;
                f.field_path.get(&doc).ok().cloned()
            }
        };
        let held = assertion_holds(f.operator, f.compare_as, actual.as_ref(), expected.as_ref())?;
        let shown = match &actual {
            None | Some(Value::Null) => "absent".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        Ok((held, shown))
    }
    .await;
    result.unwrap_or_else(|why| (false, format!("not evaluated: {why}")))
}

/// Probes a cluster's `/readyz` with lifeboat's own credentials.
async fn reachability(
    input: &StepInput<'_>,
    cluster: Option<&str>,
    want: ClusterState,
) -> (bool, String) {
    let client = match input.ctx.clusters.client_for(cluster, None).await {
        Ok(c) => c,
        Err(e) => return (false, format!("not evaluated: {e}")),
    };
    let request = match http::Request::get("/readyz").body(Vec::new()) {
        Ok(r) => r,
        Err(e) => return (false, format!("not evaluated: {e}")),
    };
    let (state, observed) =
        match tokio::time::timeout(PROBE_TIMEOUT, client.request_text(request)).await {
            Ok(Ok(_)) => (ClusterState::Reachable, "ready".to_string()),
            // The server answered, it only refused lifeboat: it is up.
            Ok(Err(kube::Error::Api(s))) if matches!(s.code, 401 | 403) => (
                ClusterState::Reachable,
                format!("answered {} {}", s.code, s.reason),
            ),
            Ok(Err(kube::Error::Api(s))) => (
                ClusterState::Unreachable,
                format!("not ready: {} {}", s.code, s.message),
            ),
            Ok(Err(e)) if is_connection_error(&e) => {
                (ClusterState::Unreachable, format!("unreachable: {e}"))
            }
            Ok(Err(e)) => return (false, format!("not evaluated: {e}")),
            Err(_) => (
                ClusterState::Unreachable,
                format!("no answer within {}s", PROBE_TIMEOUT.as_secs()),
            ),
        };
    tracing::debug!(cluster = %display_cluster(cluster), ?state, "probed");
    (state == want, observed)
}

/// Whether the run's alert is firing (`firing`) or resolved (`!firing`).
async fn alert(input: &StepInput<'_>, firing: bool) -> (bool, String) {
    let Some(name) = input
        .run
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_ALERT))
    else {
        return (
            false,
            "not evaluated: the run was not created from a ReceivedAlert".to_string(),
        );
    };
    let api: Api<ReceivedAlert> = Api::namespaced(input.ctx.client.clone(), &input.run_namespace());
    match with_api_retries(|| api.get_opt(name)).await {
        Ok(Some(alert)) => {
            let resolved = alert.is_resolved(&Time(input.ctx.clock.now()));
            let observed = if resolved { "resolved" } else { "firing" };
            (
                resolved != firing,
                format!("ReceivedAlert {name} is {observed}"),
            )
        }
        Ok(None) => (
            false,
            format!("not evaluated: ReceivedAlert {name} not found"),
        ),
        Err(e) => (
            false,
            format!("not evaluated: cannot read ReceivedAlert {name}: {e}"),
        ),
    }
}
