//! The subcommands, one module each.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::logging::{LogFormat, LogSettings};

pub mod approve;
pub mod completion;
pub mod controller;
pub mod crds;
pub mod demo;
pub mod drill;
pub mod runs;
pub mod sim;
pub mod trigger;
pub mod validate;

/// Exit code of a command that did its job and found nothing wrong.
pub const EXIT_OK: u8 = 0;
/// Exit code of a command that worked but whose outcome is negative (problems found,
/// run Failed).
pub const EXIT_FAILED: u8 = 1;
/// Exit code of usage errors and I/O or API errors.
pub const EXIT_USAGE: u8 = 2;

/// Which cluster the command talks to, as kubectl chooses it: `--kubeconfig` (else
/// `KUBECONFIG`, else `~/.kube/config`, else the in-cluster config) and `--context` (else
/// the kubeconfig's current context).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Connection {
    /// Path of the kubeconfig file to use (default: KUBECONFIG, else ~/.kube/config, else
    /// the in-cluster config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
}

impl Connection {
    /// The client configuration these flags select.
    pub async fn config(&self) -> anyhow::Result<kube::Config> {
        use anyhow::Context;
        use kube::config::{KubeConfigOptions, Kubeconfig};
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .with_context(|| format!("cannot use the kubeconfig {}", path.display()))
            }
            (None, Some(context)) => kube::Config::from_kubeconfig(&options)
                .await
                .with_context(|| format!("cannot use the kubeconfig context {context:?}")),
            (None, None) => kube::Config::infer().await.context(
                "cannot build a Kubernetes client from the kubeconfig or in-cluster config",
            ),
        }
    }

    /// A client for the selected cluster.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        use anyhow::Context;
        let config = self.config().await?;
        lifeboat_operator::api_client::build(config).context("cannot build a Kubernetes client")
    }
}

/// lifeboat: alert-driven disaster recovery for Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "lifeboat", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (`info`, `debug`, `lifeboat_operator=debug,kube=warn`). Defaults to
    /// RUST_LOG, else `info` for `controller` and `sim` and `warn` for the other commands.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Log line format (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the CustomResourceDefinitions (or write one file per CRD).
    Crds(crds::Args),
    /// Check plan, run and alert manifests offline.
    Validate(validate::Args),
    /// Run the controller: alert intake, plan validation and run execution.
    Controller(Box<controller::Args>),
    /// Serve simulated Kubernetes clusters on loopback, for trying lifeboat out.
    Sim(sim::Args),
    /// Create a ReceivedAlert from labels, as if an alert had fired.
    Trigger(trigger::Args),
    /// List, show and watch RecoveryRuns.
    Runs(runs::Args),
    /// Execute a plan as a dry run: reads are real, writes are sent with dryRun=All.
    Drill(drill::Args),
    /// Watch a database failover happen end to end on simulated clusters.
    Demo(demo::Args),
    /// Approve a run waiting at an approval step, as the user you are authenticated as.
    Approve(approve::Args),
    /// Reject a run waiting at an approval step: it stops Aborted.
    Reject(approve::Args),
    /// Print a shell completion script (`source <(lifeboat completion bash)`).
    Completion(completion::Args),
}

impl Cli {
    /// Logging settings from the global flags and the subcommand's default verbosity.
    pub fn logging(&self) -> LogSettings {
        let default = match self.command {
            Command::Controller(_) | Command::Sim(_) => "info",
            _ => "warn",
        };
        let filter = self
            .log_level
            .clone()
            .or_else(|| std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| default.to_string());
        LogSettings {
            filter,
            format: self.log_format,
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let conn = &cli.connection;
    let code = match cli.command {
        Command::Crds(args) => crds::run(args)?,
        Command::Validate(args) => validate::run(args)?,
        Command::Controller(args) => controller::run(*args, conn).await?,
        Command::Sim(args) => sim::run(args).await?,
        Command::Trigger(args) => trigger::run(args, conn).await?,
        Command::Runs(args) => runs::run(args, conn).await?,
        Command::Drill(args) => drill::run(args, conn).await?,
        Command::Demo(args) => demo::run(args).await?,
        Command::Approve(args) => {
            approve::run(args, conn, lifeboat_api::ApprovalDecision::Approve).await?
        }
        Command::Reject(args) => {
            approve::run(args, conn, lifeboat_api::ApprovalDecision::Reject).await?
        }
        Command::Completion(args) => completion::run(args),
    };
    Ok(ExitCode::from(code))
}

/// A client for the cluster `conn` selects, and the namespace to use: `-n` if given, else
/// the context's namespace.
pub async fn client_and_namespace(
    conn: &Connection,
    namespace: Option<&str>,
) -> anyhow::Result<(kube::Client, String)> {
    let client = conn.client().await?;
    let ns = namespace
        .map(str::to_string)
        .unwrap_or_else(|| client.default_namespace().to_string());
    Ok((client, ns))
}

/// Context for results of Kubernetes API calls: an API error is shown as the server's
/// message, reason and code (not the whole Status structure); other errors keep their chain.
pub trait KubeContext<T> {
    fn kube_context<F: FnOnce() -> String>(self, what: F) -> anyhow::Result<T>;
}

impl<T> KubeContext<T> for Result<T, kube::Error> {
    fn kube_context<F: FnOnce() -> String>(self, what: F) -> anyhow::Result<T> {
        self.map_err(|err| {
            let what = what();
            match err {
                kube::Error::Api(status) => anyhow::anyhow!(
                    "{what}: {} ({}, HTTP {})",
                    status.message,
                    status.reason,
                    status.code
                ),
                other => anyhow::Error::new(other).context(what),
            }
        })
    }
}

/// A duration flag (`90s`, `5m`, `1m30s`, `500ms`): Go's syntax, as in plans
/// ([`lifeboat_api::GoDuration`]).
pub fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<lifeboat_api::GoDuration>()
        .map(std::time::Duration::from)
}
