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

/// Holds the decide-and-create section of one (namespace, plan). Dropping it releases the
/// section and forgets the plan's lock once no one else holds or awaits it, so the map
/// does not keep an entry for every plan ever matched (plans come and go).
pub(crate) struct PlanSection<'a> {
    runs: &'a RecentRuns,
    key: PlanKey,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for PlanSection<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self
            .runs
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Two references: the map's and ours. A task that is waiting, or about to wait,
        // cloned it under this same map lock, so it cannot appear while this runs.
        if locks
            .get(&self.key)
            .is_some_and(|l| Arc::ptr_eq(l, &self.lock))
            && Arc::strong_count(&self.lock) == 2
        {
            locks.remove(&self.key);
        }
    }
}

impl RecentRuns {
    /// Enters the decide-and-create section of (namespace, plan), waiting for another
    /// alert's decision about the same plan to finish first.
    pub(crate) async fn section(&self, key: &PlanKey) -> PlanSection<'_> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        PlanSection {
            runs: self,
            key: key.clone(),
            lock,
            guard: Some(guard),
        }
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
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = inner.get_mut(key) {
            v.retain(keep);
            if v.is_empty() {
                inner.remove(key);
            }
        }
    }

    /// The run index now has `run` of plan `key`: it need not be remembered here any more.
    /// Forgotten at once unless an alert's decision about that plan is in progress, which
    /// may have read the index before the run was in it; that decision's next `prune`
    /// forgets it then. Without this, a plan that never sees another alert would keep its
    /// entry for the controller's lifetime.
    pub(crate) fn seen(&self, key: &PlanKey, run: &str) {
        // Holding the lock map keeps anyone from entering the section meanwhile.
        let locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        let _section = match locks.get(key) {
            Some(lock) => match lock.try_lock() {
                Ok(guard) => Some(guard),
                Err(_) => return,
            },
            None => None,
        };
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = inner.get_mut(key) {
            v.retain(|r| r.name != run);
            if v.is_empty() {
                inner.remove(key);
            }
        }
    }

    /// How many plans have a lock or remembered runs (for tests).
    #[cfg(test)]
    fn plans_held(&self) -> (usize, usize) {
        (
            self.locks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            self.inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(plan: &str) -> PlanKey {
        ("ns".into(), plan.into())
    }

    #[tokio::test]
    async fn a_plans_section_is_exclusive_and_forgotten_once_free() {
        let runs = RecentRuns::default();
        let plan = key("a");
        let first = runs.section(&plan).await;
        // A second alert for the same plan waits for the first decision.
        let second = runs.section(&plan);
        tokio::pin!(second);
        assert!(
            futures::poll!(second.as_mut()).is_pending(),
            "two decisions about one plan at once"
        );
        drop(first);
        let second = second.await;
        assert_eq!(runs.plans_held().0, 1, "held by the second alert");
        drop(second);
        assert_eq!(
            runs.plans_held().0,
            0,
            "no lock kept for a plan no one is deciding"
        );
    }

    #[test]
    fn runs_are_forgotten_per_plan_once_pruned_away() {
        let runs = RecentRuns::default();
        let now = jiff::Timestamp::now();
        runs.record(key("a"), "run-1".into(), now);
        runs.record(key("b"), "run-2".into(), now);
        runs.prune(&key("a"), |_| false);
        assert!(runs.get(&key("a")).is_empty());
        assert_eq!(runs.get(&key("b")).len(), 1);
        assert_eq!(runs.plans_held().1, 1, "only plan b still remembers a run");
    }

    #[tokio::test]
    async fn a_run_the_index_has_is_forgotten_unless_a_decision_is_in_progress() {
        let runs = RecentRuns::default();
        let now = jiff::Timestamp::now();
        runs.record(key("a"), "r1".into(), now);
        runs.record(key("a"), "r2".into(), now);
        runs.seen(&key("a"), "r1");
        let names = |runs: &RecentRuns| -> Vec<String> {
            runs.get(&key("a")).into_iter().map(|r| r.name).collect()
        };
        assert_eq!(names(&runs), vec!["r2"]);

        // A decision about plan a may have read the index before r2 reached it.
        let section = runs.section(&key("a")).await;
        runs.seen(&key("a"), "r2");
        assert_eq!(
            names(&runs),
            vec!["r2"],
            "kept while a decision is in progress"
        );
        drop(section);
        runs.seen(&key("a"), "r2");
        assert!(names(&runs).is_empty());
        assert_eq!(runs.plans_held(), (0, 0), "nothing left for plan a");
    }
}
