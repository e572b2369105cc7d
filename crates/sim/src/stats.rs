//! Audit counters: requests by verb, resource and response code.

use std::collections::BTreeMap;
use std::fmt;

/// A snapshot of a cluster's request counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// Count by (verb, resource, HTTP code).
    pub counts: BTreeMap<(String, String, u16), u64>,
}

impl RequestStats {
    /// Requests of one verb on one resource (any code).
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((v, r, _), _)| v == verb && r == resource)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests of one verb (any resource, any code).
    pub fn count_verb(&self, verb: &str) -> u64 {
        self.counts
            .iter()
            .filter(|((v, _, _), _)| v == verb)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests answered with one code.
    pub fn count_code(&self, code: u16) -> u64 {
        self.counts
            .iter()
            .filter(|((_, _, c), _)| *c == code)
            .map(|(_, n)| n)
            .sum()
    }

    /// All requests.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

impl fmt::Display for RequestStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vw = self
            .counts
            .keys()
            .map(|k| k.0.len())
            .max()
            .unwrap_or(0)
            .max(4);
        let rw = self
            .counts
            .keys()
            .map(|k| k.1.len())
            .max()
            .unwrap_or(0)
            .max(8);
        writeln!(
            f,
            "{:<vw$}  {:<rw$}  {:>4}  {:>8}",
            "VERB", "RESOURCE", "CODE", "COUNT"
        )?;
        for ((verb, resource, code), n) in &self.counts {
            writeln!(f, "{verb:<vw$}  {resource:<rw$}  {code:>4}  {n:>8}")?;
        }
        write!(
            f,
            "{:<vw$}  {:<rw$}  {:>4}  {:>8}",
            "TOTAL",
            "",
            "",
            self.total()
        )
    }
}
