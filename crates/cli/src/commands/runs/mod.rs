//! `lifeboat runs list|show|watch|cancel|retry`: what the RecoveryRuns are doing, and
//! stopping or resuming one.

use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use lifeboat_api::{RecoveryRun, RunPhase};
use serde_json::json;

use super::{Connection, EXIT_FAILED, EXIT_OK, KubeContext, client_and_namespace};
use crate::output;
use crate::watch::{self, Limits};

mod logs;

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
        /// Output format: a table (default), `wide` (more columns), `json`, `yaml` (a List,
        /// as kubectl prints it) or `name` (`recoveryrun.recovery.elotl.co/NAME`).
        #[arg(short, long, value_enum)]
        output: Option<Format>,
    },
    /// Every step of one run: phase, attempts, cluster, timing, message, rendered patch;
    /// then the run's values and conditions.
    Show {
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
        /// Output format: the step-by-step report (default, also `wide`), or the object as
        /// `json`, `yaml` or `name`.
        #[arg(short, long, value_enum)]
        output: Option<Format>,
    },
    /// The logs of the pods of a run's Job steps (all of them, or the one `--step` names).
    Logs {
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
        /// The step, counted from 1 as `runs show` numbers them; it must be a job step.
        #[arg(long, value_name = "N")]
        step: Option<usize>,
    },
    /// Follow one run live until it finishes. Exit code 0 when it Completed, 1 when it
    /// Failed.
    Watch {
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// Stop a run: the step in flight finishes (a step that only waits — approval, wait,
    /// check — stops at once), nothing after it runs, and the run ends Cancelled.
    Cancel {
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// Resume a Failed or Aborted run from the step that failed, with the values it had,
    /// as a new attempt (the earlier one stays recorded in its status).
    Retry {
        name: String,
        #[arg(short, long)]
        namespace: Option<String>,
    },
}

/// `-o`: how `list` and `show` print, as in kubectl.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Wide,
    Json,
    Yaml,
    Name,
}

pub async fn run(args: Args, conn: &Connection) -> anyhow::Result<u8> {
    match args.command {
        RunsCommand::List {
            namespace,
            all_namespaces,
            output,
        } => list(conn, namespace.as_deref(), all_namespaces, output).await,
        RunsCommand::Show {
            name,
            namespace,
            output,
        } => {
            let run = Found::get(conn, &name, namespace.as_deref()).await?.run;
            match output {
                None | Some(Format::Wide) => print!("{}", output::run_details(&run)),
                Some(format) => print!(
                    "{}",
                    render_objects(std::slice::from_ref(&run), format, false)?
                ),
            }
            Ok(EXIT_OK)
        }
        RunsCommand::Logs {
            name,
            namespace,
            step,
        } => {
            let found = Found::get(conn, &name, namespace.as_deref()).await?;
            logs::print(found.api.into_client(), &found.ns, &found.run, step).await
        }
        RunsCommand::Cancel { name, namespace } => cancel(conn, &name, namespace.as_deref()).await,
        RunsCommand::Retry { name, namespace } => retry(conn, &name, namespace.as_deref()).await,
        RunsCommand::Watch { name, namespace } => {
            let (client, ns) = client_and_namespace(conn, namespace.as_deref()).await?;
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

async fn list(
    conn: &Connection,
    namespace: Option<&str>,
    all: bool,
    format: Option<Format>,
) -> anyhow::Result<u8> {
    let (client, ns) = client_and_namespace(conn, namespace).await?;
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
    let wide = match format {
        None => false,
        Some(Format::Wide) => true,
        Some(other) => {
            print!("{}", render_objects(&runs, other, true)?);
            return Ok(EXIT_OK);
        }
    };
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
    if wide {
        headers.extend(["ATTEMPT", "DURATION", "MESSAGE"]);
    }
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
            if wide {
                let status = r.status.clone().unwrap_or_default();
                row.push(status.attempt().to_string());
                row.push(
                    output::span(status.started_at.as_ref(), status.finished_at.as_ref())
                        .unwrap_or_else(|| "-".into()),
                );
                row.push(status.message.unwrap_or_else(|| "-".into()));
            }
            if all {
                row.insert(0, r.metadata.namespace.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    print!("{}", output::table(&headers, &rows));
    Ok(EXIT_OK)
}

/// Runs printed as `-o json|yaml|name` print them: one object, or (for a list) a `List` as
/// kubectl prints one, so the output can be piped into kubectl or jq.
fn render_objects(runs: &[RecoveryRun], format: Format, as_list: bool) -> anyhow::Result<String> {
    use kube::Resource;
    let with_type = |r: &RecoveryRun| {
        let mut v = serde_json::to_value(r)?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("apiVersion".into(), RecoveryRun::api_version(&()).into());
            obj.insert("kind".into(), RecoveryRun::kind(&()).into());
        }
        Ok::<_, serde_json::Error>(v)
    };
    let doc = if as_list {
        let items = runs.iter().map(with_type).collect::<Result<Vec<_>, _>>()?;
        json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}})
    } else {
        match runs.first() {
            Some(r) => with_type(r)?,
            None => json!(null),
        }
    };
    Ok(match format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&doc)?),
        Format::Yaml => serde_yaml::to_string(&doc)?,
        Format::Name => runs
            .iter()
            .map(|r| {
                format!(
                    "recoveryrun.{}/{}\n",
                    RecoveryRun::group(&()),
                    r.metadata.name.as_deref().unwrap_or_default()
                )
            })
            .collect(),
        Format::Wide => anyhow::bail!("wide is a table, not an object format"),
    })
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

/// A run read from the API server, with the API and namespace it was found in.
struct Found {
    api: Api<RecoveryRun>,
    ns: String,
    run: RecoveryRun,
}

impl Found {
    async fn get(conn: &Connection, name: &str, namespace: Option<&str>) -> anyhow::Result<Found> {
        let (client, ns) = client_and_namespace(conn, namespace).await?;
        let api: Api<RecoveryRun> = Api::namespaced(client, &ns);
        let run = api
            .get(name)
            .await
            .kube_context(|| format!("cannot get RecoveryRun {ns}/{name}"))?;
        Ok(Found { api, ns, run })
    }
}

/// Sets `spec.cancel`; the controller stops the run before its next step.
async fn cancel(conn: &Connection, name: &str, namespace: Option<&str>) -> anyhow::Result<u8> {
    let Found { api, ns, run } = Found::get(conn, name, namespace).await?;
    let phase = output::run_phase(&run);
    if phase.is_finished() {
        anyhow::bail!(
            "RecoveryRun {ns}/{name} has already finished ({})",
            phase.as_str()
        );
    }
    let patch = Patch::Merge(json!({"spec": {"cancel": true}}));
    api.patch(name, &PatchParams::default(), &patch)
        .await
        .kube_context(|| format!("cannot cancel RecoveryRun {ns}/{name}"))?;
    println!(
        "cancelling RecoveryRun {ns}/{name}: it stops after the step in flight \
         (`lifeboat runs watch -n {ns} {name}` follows it)"
    );
    Ok(EXIT_OK)
}

/// Raises `spec.attempt` by one, on the run as read (the resourceVersion makes two
/// concurrent retries one attempt, not two).
async fn retry(conn: &Connection, name: &str, namespace: Option<&str>) -> anyhow::Result<u8> {
    let Found { api, ns, run } = Found::get(conn, name, namespace).await?;
    let status = run.status.clone().unwrap_or_default();
    if !status.phase.is_retryable() {
        anyhow::bail!(
            "RecoveryRun {ns}/{name} is {}: only a Failed or Aborted run can be retried",
            status.phase.as_str()
        );
    }
    if run.spec.attempt() > status.attempt() {
        anyhow::bail!(
            "RecoveryRun {ns}/{name} is already being retried (attempt {})",
            run.spec.attempt()
        );
    }
    let attempt = status.attempt() + 1;
    let patch = Patch::Merge(json!({
        "metadata": {"resourceVersion": run.metadata.resource_version},
        "spec": {"attempt": attempt}
    }));
    match api.patch(name, &PatchParams::default(), &patch).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => anyhow::bail!(
            "RecoveryRun {ns}/{name} changed while retrying it (someone else retried it?); \
             look at it with `lifeboat runs show -n {ns} {name}`"
        ),
        Err(e) => {
            return Err(e).kube_context(|| format!("cannot retry RecoveryRun {ns}/{name}"));
        }
    }
    let from = status.current_step.map_or(1, |i| i + 1);
    println!(
        "retrying RecoveryRun {ns}/{name} as attempt {attempt}, from step {from} \
         (`lifeboat runs watch -n {ns} {name}` follows it)"
    );
    Ok(EXIT_OK)
}
