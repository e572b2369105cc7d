//! SPEC §10 crash safety, through the real binary: the `lifeboat controller` process is
//! SIGKILLed at many random points while runs of plans with reads, patches and a Job are in
//! flight, and restarted each time. In the end every run has Completed, every Job was
//! created exactly once (counted from the API server's own record of accepted creates —
//! the simulator's request log or kube-apiserver's audit log — not only listed), there is
//! exactly one run per (alert, plan), and no step was skipped (`common::workload`).
//!
//! Runs on the backend `LIFEBOAT_TEST_CLUSTER` chooses. The kill points come from a seeded
//! generator; the seed is printed, and `LIFEBOAT_CRASH_SEED=<seed>` replays the same
//! delays. On the simulator every request is slowed down so a step spans several
//! milliseconds and most kills land inside one (a real server's etcd writes take that
//! long anyway). `LIFEBOAT_CRASH_KILLS=N` asks for N kills inside steps (default 50 on the
//! simulator, 20 on a real control plane).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::workload::{self, PLANS};
use common::*;
use lifeboat_testkit::{Backend, TestCluster};

/// Kills that must land while a step is recorded Running: `LIFEBOAT_CRASH_KILLS`, else
/// 50 on the simulator and 20 on a real control plane (whose restarts take longer).
fn kills_in_steps(backend: Backend) -> usize {
    match std::env::var("LIFEBOAT_CRASH_KILLS") {
        Ok(n) => n.parse().expect("LIFEBOAT_CRASH_KILLS must be a number"),
        Err(_) if backend == Backend::Sim => 50,
        Err(_) => 20,
    }
}
/// Upper bound on controller lives (a safety net against a loop that never gets there).
const MAX_LIVES: usize = 200;
/// Alerts added whenever all earlier ones have been dealt with.
const ALERTS_PER_WAVE: usize = 2;
/// Latency of every simulator request while the kills happen.
const LATENCY: Duration = Duration::from_millis(15);
/// How long each controller lives before it is killed: uniform in this range (ms).
const LIFETIME_MS: (u64, u64) = (20, 400);

/// splitmix64: a small, seedable generator (the delays only need to be reproducible).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("LIFEBOAT_CRASH_SEED") {
        Ok(s) => s.parse().expect("LIFEBOAT_CRASH_SEED must be a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

#[tokio::test]
async fn killed_at_random_points_every_run_completes_exactly_once() {
    let seed = seed();
    println!("crash loop seed: {seed} (LIFEBOAT_CRASH_SEED={seed} replays the kill points)");
    let mut rng = Rng(seed);

    let cluster = TestCluster::start("local").await;
    let wanted = kills_in_steps(cluster.backend());
    workload::apply_plans(&cluster).await;
    if let Some(sim) = cluster.sim() {
        sim.faults().set_latency(LATENCY);
    }

    let mut alerts = 0;
    let mut kills = 0;
    let mut kills_in_steps: BTreeMap<String, usize> = BTreeMap::new();
    let mut life = 0;
    while kills_in_steps.values().sum::<usize>() < wanted {
        assert!(
            life < MAX_LIVES,
            "only {kills_in_steps:?} of {kills} kills landed inside a step after {life} restarts (seed {seed})"
        );
        // Keep work in flight: a new wave of alerts once the earlier ones are dealt with.
        if workload::all_done(&cluster, alerts).await {
            for _ in 0..ALERTS_PER_WAVE {
                workload::add_alert(&cluster, alerts).await;
                alerts += 1;
            }
        }
        let ctl = controller(&cluster, life).await;
        let lifetime = Duration::from_millis(rng.between(LIFETIME_MS.0, LIFETIME_MS.1));
        // The kill point itself: not a wait for anything.
        tokio::time::sleep(lifetime).await;
        let in_flight = workload::step_in_flight(&cluster, alerts).await;
        ctl.assert_no_panic();
        ctl.kill().await;
        kills += 1;
        if let Some(step) = in_flight {
            *kills_in_steps.entry(step).or_default() += 1;
        }
        life += 1;
    }
    println!(
        "{kills} kills over {alerts} alerts ({} runs); inside a step, by step type: {kills_in_steps:?}",
        alerts * PLANS.len()
    );

    // One last life, left alone: everything must finish.
    if let Some(sim) = cluster.sim() {
        sim.faults().set_latency(Duration::ZERO);
    }
    let ctl = controller(&cluster, life).await;
    eventually("every alert processed and every run finished", || async {
        workload::all_done(&cluster, alerts).await.then_some(())
    })
    .await;
    workload::assert_all_recovered_once(
        &cluster,
        alerts,
        &format!("seed {seed}; last controller's {}", ctl.diag()),
    )
    .await;
    ctl.assert_no_panic();
    ctl.terminate().await;
}
