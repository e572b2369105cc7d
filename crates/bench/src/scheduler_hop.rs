//! "kube-runtime scheduler hop": how long kube-runtime's `Controller` holds a reconcile
//! request that is due at once, measured on its own scheduler in this process.
//!
//! Every watch event reaches a reconcile through `kube::runtime::scheduler`, which puts the
//! request in a tokio-util `DelayQueue` with `run_at: Instant::now()`. The queue works in
//! whole milliseconds and rounds a deadline up, so a request due now waits for the next
//! timer ticks. lifeboat's failover crosses that scheduler twice (the alert controller,
//! then the run controller), so this row is part of the gap between the failover and its
//! floor.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::scheduler::{ScheduleRequest, scheduler};
use serde::Serialize;

use crate::stats::Summary;

#[derive(Debug, Serialize)]
pub struct SchedulerHopResult {
    /// Request due now → released by the scheduler.
    pub hop: Option<Summary>,
    pub failures: Vec<String>,
}

/// Times `samples` requests, each due at once, from being sent to the scheduler to being
/// released by it. Requests are spaced by `gap`, as watch events of separate failovers are
/// (the queue is idle when each arrives).
pub async fn run(samples: usize, gap: Duration) -> SchedulerHopResult {
    let (tx, rx) = futures::channel::mpsc::unbounded::<ScheduleRequest<usize>>();
    let mut released = scheduler(rx);
    let mut times = Vec::with_capacity(samples);
    let mut failures = Vec::new();
    for i in 0..samples {
        let start = Instant::now();
        if tx
            .unbounded_send(ScheduleRequest {
                message: i,
                run_at: tokio::time::Instant::now(),
            })
            .is_err()
        {
            failures.push("scheduler hop: the scheduler stopped taking requests".into());
            break;
        }
        match tokio::time::timeout(Duration::from_secs(5), released.next()).await {
            Ok(Some(m)) if m == i => times.push(start.elapsed()),
            other => {
                failures.push(format!(
                    "scheduler hop: request {i} was not released within 5 s ({other:?})"
                ));
                break;
            }
        }
        tokio::time::sleep(gap).await;
    }
    SchedulerHopResult {
        hop: Summary::of(&times),
        failures,
    }
}
