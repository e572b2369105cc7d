//! Serve simulated clusters until Ctrl-C: `cargo run -p lifeboat-sim --example serve -- DIR NAME…`
//! writes `DIR/<NAME>.kubeconfig` for each cluster.

use std::path::PathBuf;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "sim-kubeconfigs".into()));
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names.push("sim".into());
    }
    lifeboat_sim::serve_until_interrupted(&names, &dir).await
}
