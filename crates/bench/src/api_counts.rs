//! API requests per run — from the simulator's request counters, or from a real API
//! server's audit log (see `world::Cluster::requests`) — against the minimum the failover
//! plan needs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::identity::Actor;
use crate::world::World;

/// Requests by (cluster, verb, resource), divided by the number of runs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PerRun {
    pub runs: usize,
    pub rows: Vec<Row>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub cluster: String,
    pub verb: String,
    pub resource: String,
    /// Requests per run (total / runs).
    pub per_run: f64,
    /// The minimum the plan needs, where this row is part of it.
    pub minimum: Option<u32>,
    /// Median time the server spent on one such request, ms (real servers: audit log).
    pub server_ms: Option<f64>,
}

/// The requests a 4-step failover run (patch, patch, readField, patch) cannot do without,
/// keyed by (cluster, verb, resource):
/// - mgmt: the webhook creates the ReceivedAlert; the alert controller creates the run and
///   records on the alert what it did; the run's status is written before each step that
///   acts (with the outcomes of the steps before it) and once with the outcome — 3 + 1 = 4
///   writes: the read needs none of its own (it changes nothing; its start and outcome go
///   with the last patch's start), while every step that acts is still recorded Running
///   before it acts (crash safety);
/// - db: the two patches and the read (no GET before a merge patch of a plain field);
/// - proxy: the patch.
pub fn failover_minimum() -> BTreeMap<(String, String, String), u32> {
    let rows: [(&str, &str, &str, u32); 7] = [
        ("mgmt", "create", "receivedalerts", 1),
        ("mgmt", "patch", "receivedalerts/status", 1),
        ("mgmt", "create", "recoveryruns", 1),
        ("mgmt", "update", "recoveryruns/status", 4),
        ("db", "patch", "perconapgclusters", 2),
        ("db", "get", "perconapgclusters", 1),
        ("proxy", "patch", "configmaps", 1),
    ];
    rows.into_iter()
        .map(|(c, v, r, n)| ((c.into(), v.into(), r.into()), n))
        .collect()
}

/// The part of [`failover_minimum`] on the clusters the steps act on (db, proxy): the four
/// operations themselves, all a kubectl runbook of them needs.
pub fn runbook_minimum() -> BTreeMap<(String, String, String), u32> {
    failover_minimum()
        .into_iter()
        .filter(|((cluster, _, _), _)| cluster != "mgmt")
        .collect()
}

/// Total of [`failover_minimum`].
pub fn failover_minimum_total() -> u32 {
    failover_minimum().values().sum()
}

/// Requests as (cluster, verb, resource) → count on every cluster, since the last
/// `World::reset_stats`; watches left out (one long-lived request each, opened before the
/// measurement). On real servers only `actor`'s requests count.
pub fn snapshot(
    world: &World,
    actor: Actor,
) -> Result<BTreeMap<(String, String, String), u64>, String> {
    let mut out = BTreeMap::new();
    for c in world.clusters() {
        let counts = c.requests(actor).map_err(|e| e.to_string())?;
        for ((verb, resource), n) in counts {
            *out.entry((c.name().to_string(), verb, resource))
                .or_insert(0) += n;
        }
    }
    Ok(out)
}

/// The median time the servers spent per request of `actor`, as (cluster, verb, resource)
/// → duration; empty on the simulator.
pub fn server_times(
    world: &World,
    actor: Actor,
) -> Result<BTreeMap<(String, String, String), Duration>, String> {
    let mut out = BTreeMap::new();
    for c in world.clusters() {
        for ((verb, resource), took) in c.server_times(actor).map_err(|e| e.to_string())? {
            out.insert((c.name().to_string(), verb, resource), took);
        }
    }
    Ok(out)
}

/// Waits until `actor`'s counts stop changing for `quiet` (work finishing after the runs
/// completed — events, plan status — is then counted), at most `max`.
pub async fn settle(world: &World, actor: Actor, quiet: Duration, max: Duration) {
    let deadline = Instant::now() + max;
    let mut last = snapshot(world, actor);
    let mut since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = snapshot(world, actor);
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

/// Counts per run, with the minimum filled in (rows of the minimum never seen are listed
/// with 0).
pub fn per_run(
    counts: &BTreeMap<(String, String, String), u64>,
    runs: usize,
    minimum: &BTreeMap<(String, String, String), u32>,
) -> PerRun {
    let div = runs.max(1) as f64;
    let mut keys: Vec<&(String, String, String)> = counts.keys().chain(minimum.keys()).collect();
    keys.sort();
    keys.dedup();
    let rows = keys
        .into_iter()
        .map(|k| Row {
            cluster: k.0.clone(),
            verb: k.1.clone(),
            resource: k.2.clone(),
            per_run: counts.get(k).copied().unwrap_or(0) as f64 / div,
            minimum: minimum.get(k).copied(),
            server_ms: None,
        })
        .collect();
    PerRun { runs, rows }
}

impl PerRun {
    pub fn total(&self) -> f64 {
        self.rows.iter().map(|r| r.per_run).sum()
    }

    /// Fills in the server time of each row found in `times`.
    pub fn set_server_times(&mut self, times: &BTreeMap<(String, String, String), Duration>) {
        for r in &mut self.rows {
            let key = (r.cluster.clone(), r.verb.clone(), r.resource.clone());
            r.server_ms = times.get(&key).map(|d| d.as_secs_f64() * 1000.0);
        }
    }

    /// Writes per run: every verb but the reads (get, list, watch).
    pub fn writes(&self) -> f64 {
        self.rows
            .iter()
            .filter(|r| !matches!(r.verb.as_str(), "get" | "list" | "watch"))
            .map(|r| r.per_run)
            .sum()
    }

    /// The minimum these counts were compared with, in total.
    pub fn minimum_total(&self) -> u32 {
        self.rows.iter().filter_map(|r| r.minimum).sum()
    }

    /// Requests per run by verb.
    pub fn by_verb(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        for r in &self.rows {
            *m.entry(r.verb.clone()).or_insert(0.0) += r.per_run;
        }
        m
    }

    /// GETs per run on the clusters steps act on (the plan needs exactly one: the read).
    pub fn target_gets(&self) -> f64 {
        self.rows
            .iter()
            .filter(|r| r.cluster != "mgmt" && r.verb == "get")
            .map(|r| r.per_run)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_run_divides_and_lists_missing_minimum_rows() {
        let mut counts = BTreeMap::new();
        counts.insert(("db".into(), "get".into(), "perconapgclusters".into()), 20);
        counts.insert(("mgmt".into(), "create".into(), "events".into()), 30);
        let p = per_run(&counts, 10, &failover_minimum());
        let get = p
            .rows
            .iter()
            .find(|r| r.verb == "get" && r.cluster == "db")
            .map(|r| (r.per_run, r.minimum));
        assert_eq!(get, Some((2.0, Some(1))), "20 GETs over 10 runs, minimum 1");
        assert!(
            p.rows
                .iter()
                .any(|r| r.resource == "configmaps" && r.per_run == 0.0),
            "a minimum row never seen is listed with 0"
        );
        assert_eq!(p.target_gets(), 2.0);
        assert_eq!(p.by_verb()["create"], 3.0);
        assert_eq!(failover_minimum_total(), 11);
        assert_eq!(p.minimum_total(), 11);
        let runbook = per_run(&counts, 10, &runbook_minimum());
        assert_eq!(runbook.minimum_total(), 4, "the four operations");
    }
}
