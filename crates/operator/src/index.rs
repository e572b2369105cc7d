//! Indexes the alert controller consults instead of scanning whole caches.
//!
//! - [`PlansByLabels`]: per namespace, a [`PlanIndex`] of the plans' `alertLabels`, so
//!   matching one alert costs a hash probe per alert label, not a pass over every plan (an
//!   alert only ever matches plans of its own namespace);
//! - [`RunsByPlan`]: per (namespace, plan), the plan's runs and the few facts of each the
//!   concurrency policy, the cooldown and the history limits read ([`RunFacts`]);
//! - [`ProcessedAlerts`]: when each processed alert was processed, for its retention.
//!
//! The last two outlive the caches' objects: finished runs and processed alerts are not
//! cached whole (`controller/stream.rs`), as they make up most of a busy cluster's objects.
//!
//! They are fed from the events of the plan, run and alert watches
//! ([`Indexed::apply`]). A re-list (after a 410 or a dropped watch) is built aside and
//! swapped in when complete, like the reflector's own store, so objects deleted while the
//! watch was down disappear and lookups never see a half-listed index.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::watcher;
use lifeboat_api::{ReceivedAlert, RecoveryPlan, RecoveryRun, RunPhase};
use lifeboat_engine::matching::PlanIndex;
use tokio::sync::watch;

/// An index kept up to date from watch events.
pub trait Indexer<K>: Default + Send + Sync + 'static {
    /// Adds `obj`, or replaces what was indexed for it.
    fn insert(&mut self, obj: &K);
    /// Forgets `obj`.
    fn remove(&mut self, obj: &K);
}

struct State<I> {
    live: I,
    /// The index being rebuilt by a re-list (between `Init` and `InitDone`).
    relist: Option<I>,
}

/// An [`Indexer`] fed from a reflector's events, readable from any task.
pub struct Indexed<I> {
    state: RwLock<State<I>>,
    ready: watch::Sender<bool>,
}

impl<I: Default> Default for Indexed<I> {
    fn default() -> Self {
        Indexed {
            state: RwLock::new(State {
                live: I::default(),
                relist: None,
            }),
            ready: watch::channel(false).0,
        }
    }
}

impl<I> std::fmt::Debug for Indexed<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexed")
            .field("ready", &*self.ready.borrow())
            .finish_non_exhaustive()
    }
}

impl<I> Indexed<I> {
    /// Applies one watch event.
    pub fn apply<K>(&self, event: &watcher::Event<K>)
    where
        I: Indexer<K>,
    {
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Apply(obj) => st.live.insert(obj),
            watcher::Event::Delete(obj) => st.live.remove(obj),
            watcher::Event::Init => st.relist = Some(I::default()),
            watcher::Event::InitApply(obj) => match st.relist.as_mut() {
                Some(relist) => relist.insert(obj),
                None => st.live.insert(obj),
            },
            watcher::Event::InitDone => {
                if let Some(fresh) = st.relist.take() {
                    st.live = fresh;
                }
                drop(st);
                self.ready.send_replace(true);
            }
        }
    }

    /// Reads the live index.
    pub fn read<T>(&self, f: impl FnOnce(&I) -> T) -> T {
        f(&self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .live)
    }

    /// Whether the first listing has been indexed.
    #[cfg(test)]
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first listing has been indexed.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we borrow it.
        let _ = rx.wait_for(|ready| *ready).await;
    }
}

/// Plans by their alert labels, per namespace; values are plan names.
#[derive(Default, Debug)]
pub struct PlansByLabels {
    namespaces: HashMap<String, PlanIndex<String>>,
}

impl PlansByLabels {
    /// Names of the plans of `namespace` whose `alertLabels` all appear in `labels`, sorted.
    pub fn matching(&self, namespace: &str, labels: &BTreeMap<String, String>) -> Vec<String> {
        self.namespaces
            .get(namespace)
            .map(|idx| idx.matches(labels))
            .unwrap_or_default()
    }

    /// Number of indexed plans (all namespaces).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.namespaces.values().map(PlanIndex::len).sum()
    }
}

impl Indexer<RecoveryPlan> for PlansByLabels {
    fn insert(&mut self, plan: &RecoveryPlan) {
        let Some(ns) = plan.namespace() else { return };
        self.namespaces
            .entry(ns)
            .or_default()
            .upsert(plan.name_any(), &plan.spec.alert_labels);
    }

    fn remove(&mut self, plan: &RecoveryPlan) {
        let Some(ns) = plan.namespace() else { return };
        if let Some(idx) = self.namespaces.get_mut(&ns) {
            idx.remove(&plan.name_any());
            if idx.is_empty() {
                self.namespaces.remove(&ns);
            }
        }
    }
}

/// (namespace, name).
type Key = (String, String);

/// What the alert and plan controllers read of a run (concurrency policy, cooldown,
/// history limits). The index keeps these few fields for every run; the run cache keeps
/// only runs that still have work to do.
#[derive(Clone, Debug, PartialEq)]
pub struct RunFacts {
    pub created: Option<Time>,
    /// `None` until the run controller first writes the status.
    pub phase: Option<RunPhase>,
    pub finished_at: Option<Time>,
}

impl RunFacts {
    pub fn of(run: &RecoveryRun) -> Self {
        RunFacts {
            created: run.metadata.creation_timestamp.clone(),
            phase: run.status.as_ref().map(|s| s.phase),
            finished_at: run.status.as_ref().and_then(|s| s.finished_at.clone()),
        }
    }

    /// Not finished (also: not started yet).
    pub fn is_active(&self) -> bool {
        !self.phase.is_some_and(|p| p.is_finished())
    }
}

/// Runs per (namespace, plan), by name.
#[derive(Default, Debug)]
pub struct RunsByPlan {
    /// Sorted by name. A `Vec`, not a `BTreeMap`: most plans have a run or two (history
    /// limits keep them few), and a B-tree node has room for eleven.
    by_plan: HashMap<Key, Vec<(String, RunFacts)>>,
    /// (namespace, run) → the plan it was filed under.
    plan_of: HashMap<Key, String>,
}

impl RunsByPlan {
    /// The runs of plan `plan` in `namespace`, sorted by name.
    pub fn runs_of(&self, namespace: &str, plan: &str) -> Vec<(String, RunFacts)> {
        self.by_plan
            .get(&(namespace.to_string(), plan.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    fn forget(&mut self, run_key: &Key) {
        if let Some(plan) = self.plan_of.remove(run_key) {
            let plan_key = (run_key.0.clone(), plan);
            if let Some(runs) = self.by_plan.get_mut(&plan_key) {
                if let Ok(i) = runs.binary_search_by(|(name, _)| name.cmp(&run_key.1)) {
                    runs.remove(i);
                }
                if runs.is_empty() {
                    self.by_plan.remove(&plan_key);
                }
            }
        }
    }
}

impl Indexer<RecoveryRun> for RunsByPlan {
    fn insert(&mut self, run: &RecoveryRun) {
        let Some(ns) = run.namespace() else { return };
        let run_key = (ns.clone(), run.name_any());
        let plan = run.spec.plan_name.clone();
        if self.plan_of.get(&run_key) != plan.as_ref() {
            self.forget(&run_key);
        }
        if let Some(plan) = plan {
            let runs = self.by_plan.entry((ns, plan.clone())).or_default();
            let facts = RunFacts::of(run);
            match runs.binary_search_by(|(name, _)| name.cmp(&run_key.1)) {
                Ok(i) => runs[i].1 = facts,
                Err(i) => runs.insert(i, (run_key.1.clone(), facts)),
            }
            self.plan_of.insert(run_key, plan);
        }
    }

    fn remove(&mut self, run: &RecoveryRun) {
        let Some(ns) = run.namespace() else { return };
        self.forget(&(ns, run.name_any()));
    }
}

/// When each processed alert was processed: the alerts past their retention are deleted
/// from this, since the alert cache keeps only alerts still to be processed.
#[derive(Default, Debug)]
pub struct ProcessedAlerts {
    at: HashMap<Key, Time>,
}

impl ProcessedAlerts {
    /// (namespace, name) of the alerts processed at least `retention` before `now`, sorted.
    pub fn expired(&self, now: jiff::Timestamp, retention: Duration) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .at
            .iter()
            .filter(|(_, t)| {
                Duration::try_from(now.duration_since(t.0)).is_ok_and(|age| age >= retention)
            })
            .map(|(key, _)| key.clone())
            .collect();
        out.sort();
        out
    }
}

impl Indexer<ReceivedAlert> for ProcessedAlerts {
    fn insert(&mut self, alert: &ReceivedAlert) {
        let Some(ns) = alert.namespace() else { return };
        let key = (ns, alert.name_any());
        match alert
            .status
            .as_ref()
            .filter(|s| s.processed)
            .and_then(|s| s.processed_at.clone())
        {
            Some(at) => {
                self.at.insert(key, at);
            }
            None => {
                self.at.remove(&key);
            }
        }
    }

    fn remove(&mut self, alert: &ReceivedAlert) {
        let Some(ns) = alert.namespace() else { return };
        self.at.remove(&(ns, alert.name_any()));
    }
}

/// The indexes of the alert controller.
#[derive(Default, Debug)]
pub struct Indexes {
    pub plans: Indexed<PlansByLabels>,
    pub runs: Indexed<RunsByPlan>,
    pub processed_alerts: Indexed<ProcessedAlerts>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use lifeboat_api::{
        AlertSpec, ReceivedAlertSpec, ReceivedAlertStatus, RecoveryPlanSpec, RecoveryRunSpec,
        RecoveryRunStatus,
    };

    fn plan(ns: &str, name: &str, labels: &[(&str, &str)]) -> RecoveryPlan {
        let mut p = RecoveryPlan::new(
            name,
            RecoveryPlanSpec {
                alert_labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                steps: vec![],
                finally: vec![],
                notifications: vec![],
                suspend: None,
                concurrency_policy: None,
                cooldown: None,
                successful_runs_history_limit: None,
                failed_runs_history_limit: None,
                service_account_name: None,
            },
        );
        p.metadata.namespace = Some(ns.into());
        p
    }

    fn run(ns: &str, name: &str, plan: Option<&str>) -> RecoveryRun {
        let mut r = RecoveryRun::new(
            name,
            RecoveryRunSpec {
                alert_spec: AlertSpec::default(),
                steps: vec![],
                plan_name: plan.map(str::to_string),
                dry_run: None,
                service_account_name: None,
                cancel: None,
                finally: Vec::new(),
                notifications: Vec::new(),
                attempt: None,
            },
        );
        r.metadata.namespace = Some(ns.into());
        r
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn alerts_match_only_plans_of_their_namespace() {
        let idx = Indexed::<PlansByLabels>::default();
        idx.apply(&watcher::Event::Apply(plan("a", "p1", &[("app", "db")])));
        idx.apply(&watcher::Event::Apply(plan("b", "p1", &[("app", "db")])));
        idx.apply(&watcher::Event::Apply(plan(
            "a",
            "p2",
            &[("app", "db"), ("sev", "critical")],
        )));
        let alert = labels(&[("app", "db"), ("sev", "critical")]);
        assert_eq!(idx.read(|i| i.matching("a", &alert)), vec!["p1", "p2"]);
        assert_eq!(idx.read(|i| i.matching("b", &alert)), vec!["p1"]);
        assert!(idx.read(|i| i.matching("c", &alert)).is_empty());
        assert_eq!(
            idx.read(|i| i.matching("a", &labels(&[("app", "db")]))),
            vec!["p1"],
            "p2 needs sev=critical too"
        );

        // A label change re-files the plan; a delete forgets it.
        idx.apply(&watcher::Event::Apply(plan("a", "p1", &[("app", "web")])));
        assert_eq!(idx.read(|i| i.matching("a", &alert)), vec!["p2"]);
        idx.apply(&watcher::Event::Delete(plan("a", "p2", &[])));
        assert!(idx.read(|i| i.matching("a", &alert)).is_empty());
        assert_eq!(idx.read(PlansByLabels::len), 2);
    }

    #[test]
    fn a_relist_replaces_the_index_atomically_and_drops_deleted_plans() {
        let idx = Indexed::<PlansByLabels>::default();
        assert!(!idx.is_ready());
        idx.apply(&watcher::Event::<RecoveryPlan>::Init);
        idx.apply(&watcher::Event::InitApply(plan(
            "a",
            "old",
            &[("app", "db")],
        )));
        assert!(
            idx.read(|i| i.matching("a", &labels(&[("app", "db")])))
                .is_empty(),
            "a half-done listing must not be visible"
        );
        idx.apply(&watcher::Event::<RecoveryPlan>::InitDone);
        assert!(idx.is_ready());
        assert_eq!(
            idx.read(|i| i.matching("a", &labels(&[("app", "db")]))),
            vec!["old"]
        );
        // The watch restarts; `old` was deleted meanwhile, `new` created.
        idx.apply(&watcher::Event::<RecoveryPlan>::Init);
        idx.apply(&watcher::Event::InitApply(plan(
            "a",
            "new",
            &[("app", "db")],
        )));
        assert_eq!(
            idx.read(|i| i.matching("a", &labels(&[("app", "db")]))),
            vec!["old"],
            "lookups use the previous listing until the new one is complete"
        );
        idx.apply(&watcher::Event::<RecoveryPlan>::InitDone);
        assert_eq!(
            idx.read(|i| i.matching("a", &labels(&[("app", "db")]))),
            vec!["new"]
        );
    }

    #[test]
    fn ten_thousand_plans_one_alert() {
        let idx = Indexed::<PlansByLabels>::default();
        idx.apply(&watcher::Event::<RecoveryPlan>::Init);
        for i in 0..10_000 {
            let app = format!("app-{}", i % 1000);
            let team = format!("team-{}", i % 7);
            idx.apply(&watcher::Event::InitApply(plan(
                &format!("ns-{}", i % 3),
                &format!("p{i}"),
                &[("app", &app), ("team", &team), ("severity", "critical")],
            )));
        }
        idx.apply(&watcher::Event::<RecoveryPlan>::InitDone);
        assert_eq!(idx.read(PlansByLabels::len), 10_000);
        // Plans i ≡ 42 (mod 1000) have app-42; of those, team i mod 7 and namespace i mod 3.
        let alert = labels(&[
            ("app", "app-42"),
            ("team", "team-0"),
            ("severity", "critical"),
        ]);
        let want: Vec<String> = (0..10_000)
            .filter(|i| i % 1000 == 42 && i % 7 == 0 && i % 3 == 0)
            .map(|i| format!("p{i}"))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(idx.read(|i| i.matching("ns-0", &alert)), want);
    }

    fn names(runs: Vec<(String, RunFacts)>) -> Vec<String> {
        runs.into_iter().map(|(name, _)| name).collect()
    }

    fn at(second: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_700_000_000 + second).unwrap())
    }

    #[test]
    fn runs_are_filed_under_their_plan() {
        let idx = Indexed::<RunsByPlan>::default();
        idx.apply(&watcher::Event::Apply(run("a", "r1", Some("p"))));
        idx.apply(&watcher::Event::Apply(run("a", "r2", Some("p"))));
        idx.apply(&watcher::Event::Apply(run("b", "r3", Some("p"))));
        idx.apply(&watcher::Event::Apply(run("a", "by-hand", None)));
        assert_eq!(names(idx.read(|i| i.runs_of("a", "p"))), vec!["r1", "r2"]);
        assert_eq!(names(idx.read(|i| i.runs_of("b", "p"))), vec!["r3"]);
        idx.apply(&watcher::Event::Apply(run("a", "r2", Some("q"))));
        assert_eq!(names(idx.read(|i| i.runs_of("a", "p"))), vec!["r1"]);
        assert_eq!(names(idx.read(|i| i.runs_of("a", "q"))), vec!["r2"]);
        idx.apply(&watcher::Event::Delete(run("a", "r1", Some("p"))));
        assert!(idx.read(|i| i.runs_of("a", "p")).is_empty());
    }

    #[test]
    fn a_runs_facts_follow_its_status() {
        let idx = Indexed::<RunsByPlan>::default();
        let mut r = run("a", "r1", Some("p"));
        r.metadata.creation_timestamp = Some(at(0));
        idx.apply(&watcher::Event::Apply(r.clone()));
        let facts = |idx: &Indexed<RunsByPlan>| idx.read(|i| i.runs_of("a", "p"))[0].1.clone();
        assert!(facts(&idx).is_active(), "not started yet is active");
        assert_eq!(facts(&idx).created, Some(at(0)));
        r.status = Some(RecoveryRunStatus {
            phase: RunPhase::Running,
            ..Default::default()
        });
        idx.apply(&watcher::Event::Apply(r.clone()));
        assert!(facts(&idx).is_active());
        r.status = Some(RecoveryRunStatus {
            phase: RunPhase::Completed,
            finished_at: Some(at(5)),
            ..Default::default()
        });
        idx.apply(&watcher::Event::Apply(r));
        assert!(!facts(&idx).is_active());
        assert_eq!(facts(&idx).phase, Some(RunPhase::Completed));
        assert_eq!(facts(&idx).finished_at, Some(at(5)));
    }

    fn alert(ns: &str, name: &str, processed_at: Option<i64>) -> ReceivedAlert {
        let mut a = ReceivedAlert::new(name, ReceivedAlertSpec::default());
        a.metadata.namespace = Some(ns.into());
        a.status = processed_at.map(|s| ReceivedAlertStatus {
            processed: true,
            processed_at: Some(at(s)),
            ..Default::default()
        });
        a
    }

    #[test]
    fn processed_alerts_expire_after_their_retention() {
        let idx = Indexed::<ProcessedAlerts>::default();
        idx.apply(&watcher::Event::Apply(alert("a", "new", None)));
        idx.apply(&watcher::Event::Apply(alert("a", "old", Some(0))));
        idx.apply(&watcher::Event::Apply(alert("b", "older", Some(-10))));
        idx.apply(&watcher::Event::Apply(alert("a", "recent", Some(55))));
        let now = at(60).0;
        let retention = Duration::from_secs(60);
        assert_eq!(
            idx.read(|i| i.expired(now, retention)),
            vec![
                ("a".to_string(), "old".to_string()),
                ("b".to_string(), "older".to_string())
            ],
            "processed at least the retention ago; never an unprocessed alert"
        );
        idx.apply(&watcher::Event::Delete(alert("a", "old", Some(0))));
        idx.apply(&watcher::Event::Apply(alert("b", "older", None)));
        assert!(idx.read(|i| i.expired(now, retention)).is_empty());
    }
}
