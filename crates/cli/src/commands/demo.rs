//! `lifeboat demo`: a database failover on simulated clusters, end to end.

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print only the outcome.
    #[arg(long)]
    pub quiet: bool,
}

pub async fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("the demo needs the simulator and the controller, not in this build yet")
}
