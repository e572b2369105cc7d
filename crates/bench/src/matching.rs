//! "Match one alert against 10 000 plans": the engine's [`PlanIndex`] against the linear
//! scan with [`labels_match`] over every plan, timed per lookup in this process.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use lifeboat_engine::{PlanIndex, labels_match};
use serde::Serialize;

use crate::stats::Summary;

#[derive(Debug, Serialize)]
pub struct MatchingResult {
    pub plans: usize,
    pub index: Option<Summary>,
    pub linear: Option<Summary>,
    pub failures: Vec<String>,
}

fn labels(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Plan `i`: a realistic mix — 50 alert names, 200 teams, and a shard making it unique.
fn plan_labels(i: usize) -> BTreeMap<String, String> {
    labels(&[
        ("alertname", format!("Alert{}", i % 50)),
        ("team", format!("team-{}", i % 200)),
        ("shard", i.to_string()),
    ])
}

/// An alert that matches plan `i` exactly, with the extra labels alerts carry.
fn alert_labels(i: usize) -> BTreeMap<String, String> {
    let mut l = plan_labels(i);
    l.insert("severity".into(), "critical".into());
    l.insert(
        "instance".into(),
        format!("10.0.{}.{}:9187", i % 250, i % 7),
    );
    l.insert("job".into(), "postgres-exporter".into());
    l
}

/// Times `lookups` lookups (each alert matching exactly one of `plans` plans) with the
/// index and with the linear scan.
pub fn run(plans: usize, lookups: usize) -> MatchingResult {
    let all: Vec<(usize, BTreeMap<String, String>)> =
        (0..plans).map(|i| (i, plan_labels(i))).collect();
    let mut index = PlanIndex::new();
    for (i, l) in &all {
        index.upsert(*i, l);
    }
    let alerts: Vec<(usize, BTreeMap<String, String>)> = (0..lookups)
        .map(|k| {
            // A spread of targets without a random number generator.
            let i = (k * 7919) % plans.max(1);
            (i, alert_labels(i))
        })
        .collect();
    let mut failures = Vec::new();
    let mut idx_samples = Vec::with_capacity(lookups);
    let mut lin_samples = Vec::with_capacity(lookups);
    for (want, alert) in &alerts {
        let t0 = Instant::now();
        let found = black_box(index.matches(black_box(alert)));
        idx_samples.push(t0.elapsed());
        if found != [*want] {
            failures.push(format!(
                "matching: the index found {found:?} for an alert of plan {want}"
            ));
        }
        let t0 = Instant::now();
        let n = black_box(&all)
            .iter()
            .filter(|(_, l)| labels_match(l, black_box(alert)))
            .count();
        lin_samples.push(t0.elapsed());
        if n != 1 {
            failures.push(format!(
                "matching: the linear scan found {n} plans for an alert of plan {want}"
            ));
        }
    }
    failures.truncate(5);
    MatchingResult {
        plans,
        index: Summary::of(&idx_samples),
        linear: Summary::of(&lin_samples),
        failures,
    }
}

/// Microseconds of a summary's p99, for messages.
pub fn p99_us(s: &Summary) -> f64 {
    s.p99_ms * 1000.0
}

/// The target of SPEC §9.
pub const TARGET: Duration = Duration::from_micros(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_matches_exactly_its_plan() {
        let r = run(500, 200);
        assert!(r.failures.is_empty(), "{:?}", r.failures);
        assert_eq!(r.index.map(|s| s.n), Some(200));
    }
}
