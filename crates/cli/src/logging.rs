//! Logging to stderr with `tracing-subscriber`, as text or JSON.

use anyhow::Context;
use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Logging settings resolved from the global flags.
pub struct LogSettings {
    /// A filter directive (`info`, `lifeboat_operator=debug,kube=warn`).
    pub filter: String,
    pub format: LogFormat,
}

/// Installs the global subscriber. Logs always go to stderr so stdout stays clean for
/// command output (`lifeboat crds > crds.yaml`).
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.filter)
        .with_context(|| format!("invalid --log-level `{}`", settings.filter))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
