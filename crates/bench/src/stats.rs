//! Order statistics of latency samples: median, p90, p99 (nearest rank), min, max.

use std::time::Duration;

use serde::Serialize;

/// Summary of a set of latency samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    /// Milliseconds.
    pub median_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// The sample at percentile `p` (0 < p ≤ 100) by the nearest-rank method: the smallest
/// sample such that at least `p` % of the samples are ≤ it. `sorted` must be ascending and
/// non-empty.
fn nearest_rank(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    // ceil(p/100 * n), at least 1; computed in integers to avoid float surprises at exact ranks.
    let scaled = (p * 100.0).round() as u64; // p in hundredths of a percent
    let rank = (scaled * n as u64).div_ceil(10_000).max(1) as usize;
    sorted[rank.min(n) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        Some(Summary {
            n: sorted.len(),
            median_ms: ms(nearest_rank(&sorted, 50.0)),
            p90_ms: ms(nearest_rank(&sorted, 90.0)),
            p99_ms: ms(nearest_rank(&sorted, 99.0)),
            min_ms: ms(sorted[0]),
            max_ms: ms(sorted[sorted.len() - 1]),
        })
    }
}

/// A duration in milliseconds with a precision that suits its size.
pub fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else if v >= 0.1 {
        format!("{v:.2} ms")
    } else {
        format!("{:.1} µs", v * 1000.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ms_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let s = Summary::of(&ms_list(&(1..=100).rev().collect::<Vec<_>>())).unwrap();
        assert_eq!(s.n, 100);
        assert_eq!(s.median_ms, 50.0, "median of 1..=100 by nearest rank");
        assert_eq!(s.p90_ms, 90.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 100.0);
    }

    #[test]
    fn small_samples_take_the_top_for_p99() {
        let s = Summary::of(&ms_list(&[3, 1, 2])).unwrap();
        assert_eq!(s.median_ms, 2.0);
        assert_eq!(s.p99_ms, 3.0, "with 3 samples p99 is the largest");
        let one = Summary::of(&ms_list(&[7])).unwrap();
        assert_eq!((one.median_ms, one.p99_ms), (7.0, 7.0));
        assert!(Summary::of(&[]).is_none(), "no samples, no summary");
    }

    #[test]
    fn formatting_picks_a_readable_unit() {
        assert_eq!(fmt_ms(1234.4), "1234 ms");
        assert_eq!(fmt_ms(12.34), "12.3 ms");
        assert_eq!(fmt_ms(1.234), "1.23 ms");
        assert_eq!(fmt_ms(0.0123), "12.3 µs");
    }
}
