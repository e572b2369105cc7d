//! The same failover as a bash + kubectl runbook (`runbook/failover.sh`), run against the
//! same clusters (simulated or real) in the same process run.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::api_counts::{self, PerRun};
use crate::identity::Actor;
use crate::stats::Summary;
use crate::world::World;

/// The runbook script.
pub const SCRIPT: &str = include_str!("../runbook/failover.sh");

#[derive(Debug, Serialize)]
pub struct RunbookResult {
    pub wall: Option<Summary>,
    pub api: PerRun,
    pub warmup: usize,
    /// Why the runbook could not be measured at all (kubectl missing…), if so.
    pub skipped: Option<String>,
    pub failures: Vec<String>,
}

/// Runs the script `warmup + n` times, resetting the clusters before each; the first
/// `warmup` (kubectl's discovery cache filling) are not measured.
pub async fn run(world: &World, dir: &Path, warmup: usize, n: usize) -> RunbookResult {
    let mut result = RunbookResult {
        wall: None,
        api: PerRun::default(),
        warmup,
        skipped: None,
        failures: Vec::new(),
    };
    let script = dir.join("failover.sh");
    if let Err(e) = std::fs::write(&script, SCRIPT) {
        result.skipped = Some(format!("cannot write {}: {e}", script.display()));
        return result;
    }
    let kubectl = crate::placement::controller_command("kubectl")
        .args(["version", "--client"])
        .output()
        .await;
    if !kubectl.as_ref().is_ok_and(|o| o.status.success()) {
        result.skipped = Some("kubectl is not on the PATH".to_string());
        return result;
    }
    let cache = dir.join("kube-cache");
    let mut samples = Vec::new();
    for i in 0..warmup + n {
        if i == warmup {
            world.reset_stats();
        }
        if let Err(e) = world.reset().await {
            result
                .failures
                .push(format!("runbook {i}: cannot reset the clusters: {e}"));
            break;
        }
        let t0 = Instant::now();
        let out = crate::placement::controller_command("bash")
            .arg(&script)
            .env("DB_KUBECONFIG", world.db.kubeconfig_of(Actor::Runbook))
            .env(
                "PROXY_KUBECONFIG",
                world.proxy.kubeconfig_of(Actor::Runbook),
            )
            .env("KUBECACHEDIR", &cache)
            .env("HOME", dir)
            .output()
            .await;
        let took = t0.elapsed();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                result.failures.push(format!(
                    "runbook {i}: the script failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                continue;
            }
            Err(e) => {
                result
                    .failures
                    .push(format!("runbook {i}: cannot run bash: {e}"));
                continue;
            }
        }
        if let Err(e) = world.check_failed_over().await {
            result
                .failures
                .push(format!("runbook {i}: the script succeeded but {e}"));
        }
        if i >= warmup {
            samples.push(took);
        }
    }
    let counts = api_counts::snapshot(world, Actor::Runbook).unwrap_or_else(|e| {
        result
            .failures
            .push(format!("cannot count the runbook's API requests: {e}"));
        Default::default()
    });
    result.api = api_counts::per_run(&counts, samples.len(), &api_counts::runbook_minimum());
    match api_counts::server_times(world, Actor::Runbook) {
        Ok(times) => result.api.set_server_times(&times),
        Err(e) => result
            .failures
            .push(format!("cannot read the runbook's server times: {e}")),
    }
    result.wall = Summary::of(&samples);
    result
}

/// Times one bare `kubectl version --client` (process start-up, no request): the floor
/// under every kubectl call of the runbook.
pub async fn kubectl_startup(n: usize) -> Option<Summary> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let ok = crate::placement::controller_command("kubectl")
            .args(["version", "--client"])
            .output()
            .await
            .is_ok_and(|o| o.status.success());
        if !ok {
            return None;
        }
        samples.push(t0.elapsed());
    }
    Summary::of(&samples)
}

/// Ratio of two medians (how many times faster `fast` is than `slow`).
pub fn ratio(slow: Option<Summary>, fast: Option<Summary>) -> Option<f64> {
    let (s, f) = (slow?, fast?);
    (f.median_ms > 0.0).then(|| s.median_ms / f.median_ms)
}
