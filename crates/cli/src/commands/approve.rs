//! `lifeboat approve RUN` / `lifeboat reject RUN`: decide on a run waiting at an approval
//! step. The decision is a RecoveryApproval naming the caller as the API server knows them
//! (a SelfSubjectReview), so the record cannot claim anyone else, and the shipped admission
//! policy refuses it if it did. The same object can be written with kubectl.

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::Api;
use kube::api::PostParams;
use lifeboat_api::{
    ApprovalDecision, RecoveryApproval, RecoveryApprovalSpec, RecoveryRun, RunPhase,
};
use lifeboat_operator::naming;

use super::{EXIT_OK, KubeContext, client_and_namespace};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Namespace of the run.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// The RecoveryRun waiting for approval.
    pub run: String,
    /// Why, recorded with the decision.
    #[arg(long)]
    pub reason: Option<String>,
}

pub async fn run(
    args: Args,
    conn: &super::Connection,
    decision: ApprovalDecision,
) -> anyhow::Result<u8> {
    let (client, ns) = client_and_namespace(conn, args.namespace.as_deref()).await?;
    let said = decide(&client, &ns, &args.run, decision, args.reason.as_deref()).await?;
    println!("{said}");
    Ok(EXIT_OK)
}

/// Records the caller's `decision` on run `ns/run_name`, which must be waiting for approval;
/// returns what to tell them.
pub async fn decide(
    client: &kube::Client,
    ns: &str,
    run_name: &str,
    decision: ApprovalDecision,
    reason: Option<&str>,
) -> anyhow::Result<String> {
    let runs: Api<RecoveryRun> = Api::namespaced(client.clone(), ns);
    let run = runs
        .get(run_name)
        .await
        .kube_context(|| format!("cannot get RecoveryRun {ns}/{run_name}"))?;
    let status = run.status.unwrap_or_default();
    let Some(step) = status
        .current_step
        .filter(|_| status.phase == RunPhase::WaitingForApproval)
    else {
        anyhow::bail!(
            "RecoveryRun {ns}/{run_name} is not waiting for approval (phase {})",
            status.phase.as_str()
        );
    };
    let attempt = status.attempt();
    let me = whoami(client).await?;
    // One decision per person, step and attempt: the name is derived from them, so deciding
    // twice is refused by the API server (409) instead of counted twice.
    let approval = RecoveryApproval::new(
        &naming::sanitize(
            &format!(
                "{run_name}-{step}-{}",
                naming::short_hash(
                    &[run_name, &step.to_string(), &me, &attempt.to_string()],
                    10
                )
            ),
            253,
        ),
        RecoveryApprovalSpec {
            run_name: run_name.to_string(),
            step,
            decision,
            approver: me.clone(),
            reason: reason.map(str::to_string),
            attempt: (attempt > 1).then_some(attempt),
        },
    );
    let verb = match decision {
        ApprovalDecision::Approve => "approved",
        ApprovalDecision::Reject => "rejected",
    };
    let approvals: Api<RecoveryApproval> = Api::namespaced(client.clone(), ns);
    match approvals.create(&PostParams::default(), &approval).await {
        Ok(_) => Ok(format!(
            "{verb} step {} of RecoveryRun {ns}/{run_name} as {me}",
            step + 1
        )),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(format!(
            "{me} has already decided on step {} of RecoveryRun {ns}/{run_name}",
            step + 1
        )),
        Err(e) => Err(e).kube_context(|| format!("cannot record the decision on {run_name}")),
    }
}

/// The caller's user name, as the API server authenticates them.
async fn whoami(client: &kube::Client) -> anyhow::Result<String> {
    let review = Api::<SelfSubjectReview>::all(client.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .kube_context(|| "cannot ask the API server who you are (SelfSubjectReview)".to_string())?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| anyhow::anyhow!("the API server did not say who you are"))
}
