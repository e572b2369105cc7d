//! `lifeboat runs list|show|watch`: what the RecoveryRuns are doing.

use kube::Api;
use kube::api::ListParams;
use lifeboat_api::{RecoveryRun, RunPhase};

use super::{EXIT_FAILED, EXIT_OK, KubeContext, client_and_namespace};
use crate::output;
use crate::watch::{self, Limits};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RunsCommand {
    /// A table of runs: phase, step progress, plan, alert, age.
    List {
        /// Namespace (default: the kubeconfig context's).
        #[arg(short, long, conflicts_with = "all_namespaces")]
        namespace: Option<String>,
        /// Runs of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// Every step of one run: phase, attempts, cluster, timing, message, rendered patch;
    /// then the run's values and conditions.
    Show {
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// Follow one run live until it finishes. Exit code 0 when it Completed, 1 when it
    /// Failed.
    Watch {
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    match args.command {
        RunsCommand::List {
            namespace,
            all_namespaces,
        } => list(namespace.as_deref(), all_namespaces).await,
        RunsCommand::Show { name, namespace } => {
            let (client, ns) = client_and_namespace(namespace.as_deref()).await?;
            let api: Api<RecoveryRun> = Api::namespaced(client, &ns);
            let run = api
                .get(&name)
                .await
                .kube_context(|| format!("cannot get RecoveryRun {ns}/{name}"))?;
            print!("{}", output::run_details(&run));
            Ok(EXIT_OK)
        }
        RunsCommand::Watch { name, namespace } => {
            let (client, ns) = client_and_namespace(namespace.as_deref()).await?;
            let api: Api<RecoveryRun> = Api::namespaced(client, &ns);
            // Fail fast on a typo instead of waiting for a run that will never appear.
            api.get(&name)
                .await
                .kube_context(|| format!("cannot get RecoveryRun {ns}/{name}"))?;
            let run = follow_printing(api, &name, Limits::default()).await?;
            Ok(exit_for(&run))
        }
    }
}

async fn list(namespace: Option<&str>, all: bool) -> anyhow::Result<u8> {
    let (client, ns) = client_and_namespace(namespace).await?;
    let api: Api<RecoveryRun> = if all {
        Api::all(client)
    } else {
        Api::namespaced(client, &ns)
    };
    let mut runs = api
        .list(&ListParams::default())
        .await
        .kube_context(|| "cannot list RecoveryRuns".to_string())?
        .items;
    if runs.is_empty() {
        if all {
            println!("No RecoveryRuns found.");
        } else {
            println!("No RecoveryRuns found in namespace {ns}.");
        }
        return Ok(EXIT_OK);
    }
    // Newest first, as a person looking for "what just happened" expects.
    runs.sort_by(|a, b| {
        b.metadata
            .creation_timestamp
            .cmp(&a.metadata.creation_timestamp)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let mut headers = vec!["NAME", "PHASE", "STEP", "PLAN", "ALERT", "DRY-RUN", "AGE"];
    if all {
        headers.insert(0, "NAMESPACE");
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mut row = vec![
                r.metadata.name.clone().unwrap_or_default(),
                output::run_phase(r).as_str().to_string(),
                output::progress(r),
                r.spec.plan_name.clone().unwrap_or_else(|| "-".into()),
                r.spec.alert_spec.name.clone(),
                if r.spec.is_dry_run() { "yes" } else { "no" }.to_string(),
                r.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(output::age)
                    .unwrap_or_else(|| "-".into()),
            ];
            if all {
                row.insert(0, r.metadata.namespace.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    print!("{}", output::table(&headers, &rows));
    Ok(EXIT_OK)
}

/// Follows a run, printing each transition with the wall-clock time it was seen.
pub async fn follow_printing(
    api: Api<RecoveryRun>,
    name: &str,
    limits: Limits,
) -> anyhow::Result<RecoveryRun> {
    println!("Following RecoveryRun {name} (times are UTC, as seen by this watch):");
    let run = watch::follow(api, name, limits, |_, t, _| {
        println!(
            "  {}  {}",
            output::clock(jiff::Timestamp::now()),
            t.describe()
        );
    })
    .await?;
    Ok(run)
}

/// 0 for a Completed run, 1 otherwise.
pub fn exit_for(run: &RecoveryRun) -> u8 {
    if output::run_phase(run) == RunPhase::Completed {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}
