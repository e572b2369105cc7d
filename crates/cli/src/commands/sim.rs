//! `lifeboat sim`: simulated Kubernetes clusters on loopback, for trying lifeboat (and
//! kubectl) without a real cluster.

use std::path::PathBuf;

use super::EXIT_OK;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Names of the clusters to serve (default: one cluster named `local`).
    pub names: Vec<String>,
    /// Directory for the kubeconfig files of the clusters (`<name>.kubeconfig`; default:
    /// `lifeboat-sim` in the temporary directory).
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let names = if args.names.is_empty() {
        vec!["local".to_string()]
    } else {
        args.names
    };
    let dir = args
        .dir
        .unwrap_or_else(|| std::env::temp_dir().join("lifeboat-sim"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    eprintln!(
        "Serving simulated cluster(s) {} on loopback; Ctrl-C stops them. Their kubeconfigs \
         (use one with `export KUBECONFIG=...`):",
        names.join(", ")
    );
    lifeboat_sim::serve_until_interrupted(&names, &dir)
        .await
        .map_err(|e| anyhow::anyhow!("the simulator stopped: {e}"))?;
    Ok(EXIT_OK)
}
