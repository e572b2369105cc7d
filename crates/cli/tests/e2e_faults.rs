//! SPEC §10 API faults, through the real binary: with 10 % of requests failing with 5xx,
//! 5 % throttled with 429, 10 % of status writes conflicting, watches dropped and expired
//! (410) all along, and latency, the workload of the crash-loop test has the same outcome:
//! every run Completed, every Job created once, one run per (alert, plan), no step skipped,
//! and the controller never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::workload;
use common::*;

const ALERTS: usize = 6;

#[tokio::test]
async fn runs_complete_once_through_5xx_429_conflicts_dropped_and_expired_watches() {
    let cluster = Cluster::start("local").await;
    workload::apply_plans(&cluster).await;
    let faults = cluster.sim.faults();
    faults.set_error_rate(None, 0.10);
    faults.set_throttle_rate(0.05, 1);
    faults.set_status_conflict_rate(0.10);
    faults.set_latency(Duration::from_millis(5));
    faults.drop_watches_after(Duration::from_millis(1500));
    let ctl = controller(&cluster, 0).await;

    // Every watch is also expired (410 Gone on resume) now and then, forcing re-lists.
    let sim = cluster.sim.clone();
    let expiring = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(700)).await;
            sim.faults().expire_watches();
        }
    });

    for i in 0..ALERTS {
        workload::add_alert(&cluster, i).await;
    }
    eventually("every alert processed and every run finished", || async {
        ctl.assert_no_panic();
        workload::all_done(&cluster, ALERTS).await.then_some(())
    })
    .await;
    expiring.abort();
    cluster.sim.faults().clear();

    workload::assert_all_recovered_once(&cluster, ALERTS, &ctl.diag()).await;
    let injected = cluster.sim.stats();
    assert!(
        injected.count_code(500) + injected.count_code(503) > 0 && injected.count_code(429) > 0,
        "the faults must actually have been injected:\n{injected}"
    );
    ctl.assert_no_panic();
    ctl.terminate().await;
}
