//! Matching alerts to plans.
//!
//! A plan matches an alert when every one of the plan's `alertLabels` pairs is present and
//! equal in the alert's labels. A plan with no labels matches nothing (and is rejected by
//! validation), so an empty selector can never fire every plan in a namespace.
//!
//! [`PlanIndex`] answers "which of these many plans match this alert" without looking at
//! every plan: each plan is filed under one of its own pairs, the one fewest other plans
//! were filed under when it was added. An alert can only match plans filed under one of the
//! alert's own pairs, so a lookup costs one hash probe per alert label plus a full check of
//! the (few) candidates.

use std::collections::{BTreeMap, HashMap};

/// Whether every pair of `plan_labels` is present and equal in `alert_labels`.
/// Empty plan labels match nothing.
pub fn labels_match<'a, P>(plan_labels: P, alert_labels: &BTreeMap<String, String>) -> bool
where
    P: IntoIterator<Item = (&'a String, &'a String)>,
    P::IntoIter: ExactSizeIterator,
{
    let mut pairs = plan_labels.into_iter();
    pairs.len() > 0 && pairs.all(|(k, v)| alert_labels.get(k).is_some_and(|a| a == v))
}

/// An index of plans by their alert labels, keyed by `K` (e.g. `(namespace, name)`).
#[derive(Debug, Clone)]
pub struct PlanIndex<K> {
    plans: BTreeMap<K, Entry>,
    /// label name → label value → plans filed under that pair, sorted. A sorted `Vec`
    /// rather than a `BTreeSet`: most buckets hold one plan, and a B-tree node for one key
    /// is a few hundred bytes (ten thousand plans with a unique label each).
    buckets: HashMap<String, HashMap<String, Vec<K>>>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The plan's labels, sorted by name (a boxed slice: compact, and compared in order).
    labels: Box<[(String, String)]>,
    /// The pair the plan is filed under; `None` for a plan with no labels.
    anchor: Option<(String, String)>,
}

impl<K: Clone + Ord> Default for PlanIndex<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Ord> PlanIndex<K> {
    /// An empty index.
    pub fn new() -> Self {
        PlanIndex {
            plans: BTreeMap::new(),
            buckets: HashMap::new(),
        }
    }

    /// Add a plan, or replace its labels.
    /// `labels` are sorted by name (a map's or `Labels`' order). Every plan's watch event
    /// comes here, so an unchanged plan costs a comparison and no allocation.
    pub fn upsert<'a, L>(&mut self, key: K, labels: L)
    where
        L: IntoIterator<Item = (&'a String, &'a String)>,
        L::IntoIter: ExactSizeIterator + Clone,
    {
        let labels = labels.into_iter();
        if let Some(old) = self.plans.get(&key) {
            if old.labels.len() == labels.len()
                && old
                    .labels
                    .iter()
                    .zip(labels.clone())
                    .all(|((k, v), (k2, v2))| k == k2 && v == v2)
            {
                return;
            }
            self.remove(&key);
        }
        let anchor = labels
            .clone()
            .min_by_key(|(k, v)| self.bucket_len(k, v))
            .map(|(k, v)| (k.clone(), v.clone()));
        if let Some((k, v)) = &anchor {
            let bucket = self
                .buckets
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default();
            if let Err(at) = bucket.binary_search(&key) {
                bucket.insert(at, key.clone());
            }
        }
        self.plans.insert(
            key,
            Entry {
                labels: labels.map(|(k, v)| (k.clone(), v.clone())).collect(),
                anchor,
            },
        );
    }

    /// Remove a plan (no-op when absent).
    pub fn remove(&mut self, key: &K) {
        let Some(entry) = self.plans.remove(key) else {
            return;
        };
        if let Some((k, v)) = entry.anchor
            && let Some(values) = self.buckets.get_mut(&k)
        {
            if let Some(set) = values.get_mut(&v) {
                if let Ok(at) = set.binary_search(key) {
                    set.remove(at);
                }
                if set.is_empty() {
                    values.remove(&v);
                }
            }
            if values.is_empty() {
                self.buckets.remove(&k);
            }
        }
    }

    /// The plans matching an alert with these labels, in key order.
    pub fn matches(&self, alert_labels: &BTreeMap<String, String>) -> Vec<K> {
        let mut out = Vec::new();
        for (k, v) in alert_labels {
            let Some(candidates) = self.buckets.get(k).and_then(|vals| vals.get(v)) else {
                continue;
            };
            for key in candidates {
                if let Some(entry) = self.plans.get(key)
                    && entry
                        .labels
                        .iter()
                        .all(|(k, v)| alert_labels.get(k).is_some_and(|a| a == v))
                {
                    out.push(key.clone());
                }
            }
        }
        out.sort();
        out
    }

    /// Number of plans in the index (including plans with no labels, which match nothing).
    pub fn len(&self) -> usize {
        self.plans.len()
    }

    /// Whether the index holds no plans.
    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Whether a plan with this key is indexed.
    pub fn contains(&self, key: &K) -> bool {
        self.plans.contains_key(key)
    }

    fn bucket_len(&self, k: &str, v: &str) -> usize {
        self.buckets
            .get(k)
            .and_then(|vals| vals.get(v))
            .map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn subset_semantics() {
        let alert = labels(&[("severity", "critical"), ("app", "my-app"), ("x", "y")]);
        assert!(labels_match(
            &labels(&[("severity", "critical"), ("app", "my-app")]),
            &alert
        ));
        assert!(!labels_match(&labels(&[("severity", "warning")]), &alert));
        assert!(!labels_match(&labels(&[("team", "db")]), &alert));
        assert!(
            !labels_match(&labels(&[]), &alert),
            "empty plan labels must match nothing"
        );
    }

    #[test]
    fn index_agrees_with_linear_scan() {
        let mut idx = PlanIndex::new();
        let mut plans = Vec::new();
        for i in 0..200 {
            let l = labels(&[
                ("severity", if i % 2 == 0 { "critical" } else { "warning" }),
                ("app", &format!("app-{}", i % 7)),
                ("alertname", &format!("A{}", i % 13)),
            ]);
            idx.upsert(("ns".to_string(), format!("p{i}")), &l);
            plans.push((("ns".to_string(), format!("p{i}")), l));
        }
        idx.upsert(("ns".into(), "empty".into()), &BTreeMap::new());
        assert_eq!(idx.len(), 201);
        for i in 0..30 {
            let alert = labels(&[
                ("severity", if i % 3 == 0 { "critical" } else { "warning" }),
                ("app", &format!("app-{}", i % 7)),
                ("alertname", &format!("A{}", i % 13)),
                ("extra", "1"),
            ]);
            let mut want: Vec<_> = plans
                .iter()
                .filter(|(_, l)| labels_match(l, &alert))
                .map(|(k, _)| k.clone())
                .collect();
            want.sort();
            assert_eq!(idx.matches(&alert), want, "alert {alert:?}");
        }
    }

    #[test]
    fn upsert_replaces_and_remove_forgets() {
        let mut idx = PlanIndex::new();
        idx.upsert("a", &labels(&[("app", "x")]));
        assert_eq!(idx.matches(&labels(&[("app", "x")])), vec!["a"]);
        idx.upsert("a", &labels(&[("app", "y")]));
        assert!(
            idx.matches(&labels(&[("app", "x")])).is_empty(),
            "old labels still match"
        );
        assert_eq!(idx.matches(&labels(&[("app", "y")])), vec!["a"]);
        idx.remove(&"a");
        assert!(idx.matches(&labels(&[("app", "y")])).is_empty());
        assert!(idx.is_empty());
    }
}
