//! `lifeboat drill`: execute a plan as a dry run. The controller performs the reads for
//! real and sends every write with `dryRun=All`, so the API server checks it without
//! applying it; the rendered patches are shown at the end.

use std::time::Duration;

use kube::Api;
use kube::api::PostParams;
use lifeboat_api::{AlertSpec, LABEL_PLAN, RecoveryPlan, RecoveryRun, RecoveryRunSpec, StepType};

use super::{KubeContext, client_and_namespace, runs};
use crate::kv;
use crate::output;
use crate::watch::Limits;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Namespace of the plan (the drill run is created there too).
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// The RecoveryPlan to drill.
    pub plan: String,
    /// Alert labels the run sees as `.Alert.Labels` (repeatable; default: the plan's
    /// alertLabels).
    #[arg(short, long = "label", value_name = "KEY=VALUE", value_parser = kv::parse_pair)]
    pub labels: Vec<(String, String)>,
    /// Give up when no controller has started the run after this long.
    #[arg(long, default_value = "60s", value_parser = super::duration_arg)]
    pub timeout: Duration,
}

pub async fn run(args: Args, conn: &super::Connection) -> anyhow::Result<u8> {
    let (client, ns) = client_and_namespace(conn, args.namespace.as_deref()).await?;
    let plans: Api<RecoveryPlan> = Api::namespaced(client.clone(), &ns);
    let plan = plans
        .get(&args.plan)
        .await
        .kube_context(|| format!("cannot get RecoveryPlan {ns}/{}", args.plan))?;
    let labels = if args.labels.is_empty() {
        plan.spec.alert_labels.clone().into()
    } else {
        kv::to_map(&args.labels)
    };
    let name = drill_name(&args.plan, jiff::Timestamp::now());
    let mut run = RecoveryRun::new(
        &name,
        RecoveryRunSpec {
            alert_spec: AlertSpec {
                name: format!("{}-drill", args.plan),
                labels,
                annotations: Default::default(),
            },
            steps: plan.spec.steps.clone(),
            finally: plan.spec.finally.clone(),
            notifications: plan.spec.notifications.clone(),
            plan_name: Some(args.plan.clone()),
            dry_run: Some(true),
            service_account_name: plan.spec.service_account_name.clone(),
            cancel: None,
            attempt: None,
        },
    );
    run.metadata.labels = Some([(LABEL_PLAN.to_string(), args.plan.clone())].into());
    let runs_api: Api<RecoveryRun> = Api::namespaced(client, &ns);
    runs_api
        .create(&PostParams::default(), &run)
        .await
        .kube_context(|| format!("cannot create RecoveryRun {ns}/{name}"))?;
    println!(
        "Drill of plan {} as dry-run RecoveryRun {name}: reads are real, writes are \
         checked by the API server with dryRun=All and not applied.",
        args.plan
    );
    let limits = Limits {
        pending: Some(args.timeout),
        total: None,
    };
    let finished = runs::follow_printing(runs_api, &name, limits).await?;

    println!("\nRendered writes (not applied):");
    let mut any = false;
    for (i, step) in finished.spec.steps.iter().enumerate() {
        if step.type_ != StepType::Patch && step.type_ != StepType::Job {
            continue;
        }
        let rendered = output::step_status(&finished, i).and_then(|s| s.rendered.clone());
        let target = step
            .patch
            .as_ref()
            .map(|p| {
                format!(
                    "{} {}/{} ({})",
                    p.target.resource,
                    p.target.namespace.as_deref().unwrap_or("-"),
                    p.target.name,
                    p.effective_patch_type().content_type()
                )
            })
            .unwrap_or_else(|| "Job".into());
        any = true;
        println!(
            "  {}. {} → {target}",
            i + 1,
            output::step_title(&finished, i)
        );
        match rendered {
            Some(r) => println!(
                "     {}",
                serde_json::to_string_pretty(&r)
                    .unwrap_or_default()
                    .replace('\n', "\n     ")
            ),
            None => println!("     (not rendered: the step did not run)"),
        }
    }
    if !any {
        println!("  (the plan has no patch or job steps)");
    }
    if let Some(values) = finished.status.as_ref().map(|s| &s.values)
        && !values.is_empty()
    {
        println!("\nValues read:");
        for (k, v) in values {
            println!("  {k} = {}", output::json(v));
        }
    }
    println!(
        "\nDrill {}.",
        output::run_phase(&finished).as_str().to_lowercase()
    );
    Ok(runs::exit_for(&finished))
}

/// `<plan>-drill-<yyyymmdd-hhmmss>`, within the 63 characters of a label value.
fn drill_name(plan: &str, now: jiff::Timestamp) -> String {
    let stamp = now.strftime("%Y%m%d-%H%M%S").to_string();
    let suffix = format!("-drill-{stamp}");
    let room = 63 - suffix.len();
    let prefix: String = plan.chars().take(room).collect();
    format!("{}{suffix}", prefix.trim_end_matches(['-', '.']))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn drill_names_fit_and_sort_by_time() {
        let t: jiff::Timestamp = "2026-11-22T10:22:09Z".parse().unwrap();
        assert_eq!(
            drill_name("ferretdb-failover", t),
            "ferretdb-failover-drill-20261122-102209"
        );
        assert!(drill_name(&"p".repeat(100), t).len() <= 63);
    }
}
