//! SHIMS: stand-ins for interfaces that other crates of the workspace are about to provide
//! (`lifeboat_sim::SimCluster` and `serve_until_interrupted`, `lifeboat_operator::run_controller`).
//! They have the agreed signatures and fail at run time. Delete this module, and use the
//! real items instead, as soon as they land.

use std::path::Path;

use lifeboat_operator::ControllerConfig;
use tokio_util::sync::CancellationToken;

pub async fn run_controller(
    _client: kube::Client,
    _config: ControllerConfig,
    _shutdown: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!("this build of lifeboat has no controller yet")
}

pub async fn serve_until_interrupted(_names: &[String], _dir: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "this build of lifeboat has no simulator yet",
    ))
}

/// The simulator's cluster handle, as agreed.
#[derive(Clone)]
pub struct SimCluster {
    name: String,
}

impl SimCluster {
    pub async fn start(name: &str) -> std::io::Result<SimCluster> {
        let _ = SimCluster {
            name: name.to_string(),
        };
        Err(std::io::Error::other(
            "this build of lifeboat has no simulator yet",
        ))
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn url(&self) -> String {
        String::new()
    }
    pub fn kubeconfig_yaml(&self) -> String {
        String::new()
    }
    pub async fn shutdown(self) {}
}
