//! `lifeboat sim`: simulated Kubernetes clusters on loopback, for trying lifeboat (and
//! kubectl) without a real cluster.

use std::path::PathBuf;

use super::EXIT_OK;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Names of the clusters to serve (default: one cluster named `local`).
    pub names: Vec<String>,
    /// Directory for the kubeconfig files of the clusters.
    #[arg(long, value_name = "D")]
    pub dir: Option<PathBuf>,
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let names = if args.names.is_empty() {
        vec!["local".to_string()]
    } else {
        args.names
    };
    sim_shim::serve_until_interrupted(&names, args.dir.as_deref()).await?;
    Ok(EXIT_OK)
}

// SHIM: `lifeboat_sim::serve_until_interrupted` is not in the simulator crate yet; replace
// this module with the real call as soon as it lands.
mod sim_shim {
    pub async fn serve_until_interrupted(
        _names: &[String],
        _dir: Option<&std::path::Path>,
    ) -> anyhow::Result<()> {
        anyhow::bail!("this build of lifeboat has no simulator yet")
    }
}
