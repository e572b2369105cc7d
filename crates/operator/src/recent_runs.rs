//! The runs this process created, remembered until the cache shows them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// (namespace, plan name).
pub(crate) type PlanKey = (String, String);

/// Runs this process created, per (namespace, plan), until the cache reflects them. Makes
/// the concurrency policy and cooldown hold for two alerts processed back to back.
#[derive(Default)]
pub struct RecentRuns {
    inner: Mutex<HashMap<PlanKey, Vec<RecentRun>>>,
    /// Serialises the decide-and-create section per (namespace, plan).
    locks: Mutex<HashMap<PlanKey, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Clone, Debug)]
pub(crate) struct RecentRun {
    pub(crate) name: String,
    pub(crate) created: jiff::Timestamp,
}

impl std::fmt::Debug for RecentRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentRuns").finish_non_exhaustive()
    }
}

impl RecentRuns {
    pub(crate) fn lock_for(&self, key: &PlanKey) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone()
    }

    pub(crate) fn record(&self, key: PlanKey, name: String, created: jiff::Timestamp) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .push(RecentRun { name, created });
    }

    pub(crate) fn get(&self, key: &PlanKey) -> Vec<RecentRun> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn prune(&self, key: &PlanKey, keep: impl Fn(&RecentRun) -> bool) {
        if let Some(v) = self
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(key)
        {
            v.retain(keep);
        }
    }
}
