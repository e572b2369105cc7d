//! `lifeboat trigger`: create a ReceivedAlert by hand, as if an alert had fired.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::WatchStreamExt;
use lifeboat_api::{ReceivedAlert, ReceivedAlertSpec, RecoveryRun};

use super::{EXIT_FAILED, EXIT_OK, KubeContext, client_and_namespace, runs};
use crate::kv;
use crate::output;
use crate::watch::Limits;

/// Recorded as `spec.source` of alerts created by this command.
pub const SOURCE: &str = "lifeboat-cli";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Namespace of the alert: only plans of this namespace can match it.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// An alert label (repeatable): `--label alertname=PostgresPrimaryDown`.
    #[arg(short, long = "label", value_name = "KEY=VALUE", value_parser = kv::parse_pair, required = true)]
    pub labels: Vec<(String, String)>,
    /// An alert annotation (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = kv::parse_pair)]
    pub annotations: Vec<(String, String)>,
    /// Name of the ReceivedAlert (default: generated from the `alertname` label).
    #[arg(long)]
    pub name: Option<String>,
    /// Wait until the alert is processed and its runs finish, and show them.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: how long to wait for processing and for the runs.
    #[arg(long, default_value = "5m", value_parser = super::duration_arg)]
    pub timeout: Duration,
}

pub async fn run(args: Args, conn: &super::Connection) -> anyhow::Result<u8> {
    let (client, ns) = client_and_namespace(conn, args.namespace.as_deref()).await?;
    let labels = kv::to_map(&args.labels);
    let mut alert = ReceivedAlert::new(
        "",
        ReceivedAlertSpec {
            labels: labels.clone(),
            annotations: kv::to_map(&args.annotations),
            starts_at: Some(Time(jiff::Timestamp::now())),
            ends_at: None,
            fingerprint: None,
            generator_url: None,
            source: Some(SOURCE.to_string()),
        },
    );
    match &args.name {
        Some(n) => alert.metadata.name = Some(n.clone()),
        None => {
            alert.metadata.name = None;
            let base = labels.get("alertname").map(String::as_str).unwrap_or("cli");
            alert.metadata.generate_name = Some(format!("{}-", dns_prefix(base)));
        }
    }
    let alerts: Api<ReceivedAlert> = Api::namespaced(client.clone(), &ns);
    let created = alerts
        .create(&PostParams::default(), &alert)
        .await
        .kube_context(|| format!("cannot create a ReceivedAlert in namespace {ns}"))?;
    let name = created.metadata.name.clone().unwrap_or_default();
    println!("{name}");
    if !args.wait {
        return Ok(EXIT_OK);
    }

    let processed = tokio::time::timeout(args.timeout, wait_processed(alerts, &name))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "ReceivedAlert {ns}/{name} was not processed within {}: is a lifeboat \
                 controller running?",
                output::duration(args.timeout)
            )
        })??;
    let status = processed.status.unwrap_or_default();
    if status.runs.is_empty() {
        println!(
            "No run started: {}",
            status
                .message
                .or(status.reason)
                .unwrap_or_else(|| "no plan matched".into())
        );
        for s in &status.skipped {
            println!(
                "  plan {} skipped ({}){}",
                s.plan,
                s.reason,
                s.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            );
        }
        return Ok(EXIT_FAILED);
    }
    let runs_api: Api<RecoveryRun> = Api::namespaced(client, &ns);
    let mut code = EXIT_OK;
    for run_name in &status.runs {
        let limits = Limits {
            pending: None,
            total: Some(args.timeout),
        };
        let run = runs::follow_printing(runs_api.clone(), run_name, limits).await?;
        println!();
        print!("{}", output::run_details(&run));
        println!();
        if runs::exit_for(&run) != EXIT_OK {
            code = EXIT_FAILED;
        }
    }
    Ok(code)
}

async fn wait_processed(alerts: Api<ReceivedAlert>, name: &str) -> anyhow::Result<ReceivedAlert> {
    let stream = kube::runtime::watcher::watch_object(alerts, name).default_backoff();
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(Some(alert)) if alert.status.as_ref().is_some_and(|s| s.processed) => {
                return Ok(alert);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(alert = name, error = %err, "watch error; retrying"),
        }
    }
    anyhow::bail!("the watch on ReceivedAlert {name} ended")
}

/// A lowercase DNS-label prefix from free text (`PostgresPrimaryDown` → `postgresprimarydown`).
fn dns_prefix(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(40).collect();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "alert".into() } else { out }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_take_the_duration_syntax_of_plans() {
        use crate::commands::duration_arg;
        assert_eq!(duration_arg("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration_arg("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration_arg("250ms"), Ok(Duration::from_millis(250)));
        assert!(duration_arg("5").is_err());
        assert!(duration_arg("5d").is_err());
    }

    #[test]
    fn alert_name_prefixes_are_dns_labels() {
        assert_eq!(dns_prefix("PostgresPrimaryDown"), "postgresprimarydown");
        assert_eq!(dns_prefix("DB down!"), "db-down");
        assert_eq!(dns_prefix("!!!"), "alert");
    }
}
