//! SHIM: a stand-in for `lifeboat_operator::run_controller`, which the operator crate is
//! about to provide. It has the agreed signature and fails at run time. Delete this module,
//! and call the real function instead, as soon as it lands.

use lifeboat_operator::ControllerConfig;
use tokio_util::sync::CancellationToken;

pub async fn run_controller(
    _client: kube::Client,
    _config: ControllerConfig,
    _shutdown: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::bail!("this build of lifeboat has no controller yet")
}
