//! `approval` steps: wait for people to decide.
//!
//! Decisions are RecoveryApproval objects in the run's namespace naming the run and the
//! step (and the run's attempt). Who wrote one is established by the API server (the shipped
//! ValidatingAdmissionPolicy refuses an approval whose `spec.approver` is not the
//! authenticated user), and who may write one is RBAC. The step succeeds once
//! `requiredApprovals` distinct approvers approved, stops the run `Aborted` as soon as one
//! rejects, and applies `onTimeout` when the step's timeout passes. The timeout counts from
//! when the step first started, so a restarted controller does not extend it.
//!
//! Decisions are objects, not in-memory state: a controller that restarts while waiting
//! lists them again and reaches the same decision.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use lifeboat_api::{ApprovalDecision, ApprovalRecord, GoDuration, RecoveryApproval};
use lifeboat_engine::ApprovalAction;

use super::{StepFailure, StepInput, StepOutput};

pub async fn execute(
    input: &StepInput<'_>,
    action: &ApprovalAction,
) -> Result<StepOutput, StepFailure> {
    if input.dry_run {
        return Ok(StepOutput {
            message: "dry run: the approval is treated as granted; nobody was asked".into(),
            ..Default::default()
        });
    }
    let run = input.run_name();
    let step = u32::try_from(input.index).unwrap_or(u32::MAX);
    // Decisions on an earlier attempt of the run (before `lifeboat runs retry`) do not count.
    let attempt = input.run_attempt();
    let deadline = tokio::time::Instant::now() + remaining(input);
    let api: Api<RecoveryApproval> =
        Api::namespaced(input.ctx.client.clone(), &input.run_namespace());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    // The decisions on this run's step, by object name; complete once the list is done.
    let mut decisions: BTreeMap<String, RecoveryApproval> = BTreeMap::new();
    let mut listing: BTreeMap<String, RecoveryApproval> = BTreeMap::new();
    let mut listed = false;
    loop {
        let event = match tokio::time::timeout_at(deadline, stream.try_next()).await {
            Err(_) => return timed_out(input, action, &decisions),
            Ok(Ok(Some(e))) => e,
            Ok(Ok(None)) => return Err(StepFailure::retryable("the approval watch ended")),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "approval watch error; continuing");
                continue;
            }
        };
        let ours = |a: &RecoveryApproval| {
            a.spec.run_name == run && a.spec.step == step && a.spec.attempt() == attempt
        };
        match event {
            watcher::Event::Init => listing.clear(),
            watcher::Event::InitApply(a) if ours(&a) => {
                listing.insert(a.name_any(), a);
            }
            watcher::Event::InitDone => {
                decisions = std::mem::take(&mut listing);
                listed = true;
            }
            watcher::Event::Apply(a) if ours(&a) => {
                decisions.insert(a.name_any(), a);
            }
            watcher::Event::Delete(a) => {
                decisions.remove(&a.name_any());
            }
            _ => continue,
        }
        if listed && let Some(outcome) = decide(action, &decisions) {
            return outcome;
        }
    }
}

/// How long the step may still wait: its timeout, counted from when it first started.
fn remaining(input: &StepInput<'_>) -> Duration {
    let started = input
        .run
        .status
        .as_ref()
        .and_then(|s| s.steps.get(input.index))
        .and_then(|s| s.started_at.as_ref())
        .map(|t| t.0);
    let elapsed = started
        .and_then(|t| Duration::try_from(input.ctx.clock.now().duration_since(t)).ok())
        .unwrap_or_default();
    input.step.timeout.saturating_sub(elapsed)
}

/// One decision per approver, earliest first: a person counts once, and a person who both
/// approved and rejected (in two objects written with kubectl) counts as rejecting — a
/// changed mind must stop the run, not be outvoted by its own earlier approval.
fn records(decisions: &BTreeMap<String, RecoveryApproval>) -> Vec<ApprovalRecord> {
    let mut all: Vec<&RecoveryApproval> = decisions.values().collect();
    all.sort_by_key(|a| (a.metadata.creation_timestamp.clone(), a.name_any()));
    let mut out: Vec<ApprovalRecord> = Vec::new();
    for a in all {
        let record = ApprovalRecord {
            approver: a.spec.approver.clone(),
            decision: a.spec.decision,
            time: a.metadata.creation_timestamp.clone(),
            reason: a.spec.reason.clone(),
        };
        match out.iter_mut().find(|r| r.approver == record.approver) {
            None => out.push(record),
            Some(r)
                if r.decision == ApprovalDecision::Approve
                    && record.decision == ApprovalDecision::Reject =>
            {
                *r = record;
            }
            Some(_) => {}
        }
    }
    out
}

/// The outcome once the decisions settle it: a rejection, or enough approvals.
fn decide(
    action: &ApprovalAction,
    decisions: &BTreeMap<String, RecoveryApproval>,
) -> Option<Result<StepOutput, StepFailure>> {
    let records = records(decisions);
    if let Some(r) = records
        .iter()
        .find(|r| r.decision == ApprovalDecision::Reject)
    {
        let why = r
            .reason
            .as_ref()
            .map(|x| format!(": {x}"))
            .unwrap_or_default();
        let message = format!("rejected by {}{why}", r.approver);
        return Some(Err(StepFailure::abort(message).with_approvals(records)));
    }
    let approvers: Vec<&str> = records.iter().map(|r| r.approver.as_str()).collect();
    (approvers.len() >= action.required as usize).then(|| {
        Ok(StepOutput {
            message: format!(
                "approved by {} ({} of {} required)",
                approvers.join(", "),
                approvers.len(),
                action.required
            ),
            approvals: records.clone(),
            ..Default::default()
        })
    })
}

fn timed_out(
    input: &StepInput<'_>,
    action: &ApprovalAction,
    decisions: &BTreeMap<String, RecoveryApproval>,
) -> Result<StepOutput, StepFailure> {
    let records = records(decisions);
    let waited = GoDuration(input.step.timeout);
    let got = format!("{} of {} approval(s)", records.len(), action.required);
    match action.on_timeout {
        ApprovalDecision::Approve => Ok(StepOutput {
            message: format!(
                "no decision within {waited} ({got}): approved by default (onTimeout: Approve)"
            ),
            approvals: records,
            ..Default::default()
        }),
        ApprovalDecision::Reject => Err(StepFailure::abort(format!(
            "no decision within {waited} ({got}): rejected by default (onTimeout: Reject)"
        ))
        .with_approvals(records)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_api::RecoveryApprovalSpec;

    fn two_needed() -> ApprovalAction {
        ApprovalAction {
            message: None,
            required: 2,
            on_timeout: ApprovalDecision::Reject,
        }
    }

    /// Decisions on one step, each (object name, approver, decision), in creation order.
    fn decisions(of: &[(&str, &str, ApprovalDecision)]) -> BTreeMap<String, RecoveryApproval> {
        of.iter()
            .enumerate()
            .map(|(i, (name, approver, decision))| {
                let mut a = RecoveryApproval::new(
                    name,
                    RecoveryApprovalSpec {
                        run_name: "run".into(),
                        step: 0,
                        decision: *decision,
                        approver: (*approver).into(),
                        reason: None,
                        attempt: None,
                    },
                );
                a.metadata.creation_timestamp =
                    Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        jiff::Timestamp::from_second(1_000 + i as i64).unwrap_or_default(),
                    ));
                (name.to_string(), a)
            })
            .collect()
    }

    use ApprovalDecision::{Approve, Reject};

    #[test]
    fn one_person_approving_twice_counts_once() {
        let d = decisions(&[("a1", "alice", Approve), ("a2", "alice", Approve)]);
        assert!(
            decide(&two_needed(), &d).is_none(),
            "still waiting for a second person"
        );
        let d = decisions(&[("a1", "alice", Approve), ("b1", "bob", Approve)]);
        let out = decide(&two_needed(), &d).unwrap().unwrap();
        assert_eq!(out.message, "approved by alice, bob (2 of 2 required)");
        assert_eq!(out.approvals.len(), 2);
    }

    #[test]
    fn any_rejection_stops_the_run() {
        let d = decisions(&[("a1", "alice", Approve), ("c1", "carol", Reject)]);
        let failure = decide(&two_needed(), &d).unwrap().unwrap_err();
        assert!(failure.abort);
        assert_eq!(failure.message, "rejected by carol");
        assert_eq!(failure.approvals.len(), 2, "both decisions are recorded");
    }

    #[test]
    fn a_person_who_changes_their_mind_to_reject_stops_the_run() {
        let d = decisions(&[("a1", "alice", Approve), ("a2", "alice", Reject)]);
        let failure = decide(&two_needed(), &d).unwrap().unwrap_err();
        assert_eq!(failure.message, "rejected by alice");
        assert_eq!(failure.approvals.len(), 1, "one record per person");
    }
}
