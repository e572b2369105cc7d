//! The watch streams that feed the controllers: a cache (reflector), the indexes, and the
//! objects to reconcile, with two things kube's defaults get wrong for lifeboat.
//!
//! **A re-list must not lose objects.** After a watch ends with 410 Expired (the client fell
//! behind the server's change window, which a burst of writes can cause on any API server)
//! the watcher lists again: `Init`, one `InitApply` per object, `InitDone`. The reflector
//! keeps a re-list aside and swaps it into the cache only at `InitDone`, but kube's
//! `applied_objects()` hands each `InitApply` object to the controller at once. The
//! controller's runner looks every object up in the cache when it runs it, and an object the
//! cache does not have yet — one created while the watch was down — is dropped with
//! `ObjectNotFound`, never retried. A generation predicate then filters every later event of
//! that object away too. So an alert that arrived during the outage was never processed and
//! a plan never validated. [`reconcile_triggers`] holds a re-list's objects back until its
//! `InitDone`, when the cache has them.
//!
//! **Caches hold only what the controllers read.** `managedFields` and the
//! `last-applied-configuration` annotation are dropped before an object is cached
//! ([`trim`]): they are most of a small object's size and nothing in lifeboat reads them.
//! Finished runs and processed alerts, which make up most of a busy cluster's objects, are
//! not cached at all ([`cached_watch`]'s `cached`): the few facts still read of them live
//! in the indexes (`index.rs`), and a finished run asked to retry is cached again.

use std::collections::HashMap;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use lifeboat_api::RecoveryPlan;
use serde::de::DeserializeOwned;

/// Annotation `kubectl apply` keeps the whole previous object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops from `obj` what no controller reads (managed fields, kubectl's last-applied copy).
pub fn trim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// [`trim`], and a plan's last run (name, phase, time), which only [`crate::last_run`]
/// writes and nothing reads back from the cache.
pub fn trim_plan(plan: &mut RecoveryPlan) {
    trim(plan);
    if let Some(status) = plan.status.as_mut() {
        status.last_run = None;
        status.last_run_phase = None;
        status.last_run_time = None;
    }
}

/// Which changes of an object trigger a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Triggers {
    /// Every change.
    EveryChange,
    /// A new object, or a new `metadata.generation` (its spec changed), not the
    /// controller's own status writes.
    NewGeneration,
}

/// The last generation seen of each cached object, by uid (a name may be reused by a new
/// object). kube-runtime's `predicates::generation` filter does the same but remembers
/// every object for an hour after it is gone, under its name, namespace and uid; this one
/// forgets an object when it leaves the cache, which finished runs do by the thousand.
#[derive(Default)]
struct Generations(HashMap<String, i64>);

impl Generations {
    /// Whether `obj` is new to this filter or has a new generation (always, without a uid
    /// or a generation).
    fn changed<K: Resource>(&mut self, obj: &K) -> bool {
        let meta = obj.meta();
        let (Some(uid), Some(generation)) = (meta.uid.as_ref(), meta.generation) else {
            return true;
        };
        match self.0.get_mut(uid) {
            Some(seen) if *seen == generation => false,
            Some(seen) => {
                *seen = generation;
                true
            }
            None => {
                self.0.insert(uid.clone(), generation);
                true
            }
        }
    }

    fn forget<K: Resource>(&mut self, obj: &K) {
        if let Some(uid) = obj.meta().uid.as_ref() {
            self.0.remove(uid);
        }
    }

    /// Keeps only the objects in `cache` (after a re-list: objects deleted while the watch
    /// was down never sent a `Delete`).
    fn retain_cached<K: Resource + Clone>(&mut self, cache: &Store<K>)
    where
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        let cached: std::collections::HashSet<String> = cache
            .state()
            .iter()
            .filter_map(|obj| obj.meta().uid.clone())
            .collect();
        self.0.retain(|uid, _| cached.contains(uid));
    }
}

/// The objects to reconcile, from a reflector's events (the cache `store` is fed by that
/// reflector): each applied object as it comes, and a (re-)list's objects all at once when
/// the list is complete, read from the cache — which by then has swapped them in, so the
/// controller finds every one of them. Only their references are held while the list
/// arrives. Deletions trigger nothing (the controllers clean up without finalizers).
pub fn reconcile_triggers<K, S>(
    events: S,
    store: Store<K>,
    triggers: Triggers,
) -> impl Stream<Item = Result<K, watcher::Error>>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    enum Trigger<K: Resource> {
        Object(K),
        Listed(ObjectRef<K>),
        Failed(watcher::Error),
    }
    struct State<K: Resource> {
        listing: Vec<ObjectRef<K>>,
        generations: Option<Generations>,
    }
    let state = State {
        listing: Vec::new(),
        generations: (triggers == Triggers::NewGeneration).then(Generations::default),
    };
    let cache = store.clone();
    events
        .scan(state, move |st, ev| {
            let changed =
                |st: &mut State<K>, obj: &K| st.generations.as_mut().is_none_or(|g| g.changed(obj));
            let out: Vec<Trigger<K>> = match ev {
                Ok(watcher::Event::Apply(obj)) if changed(st, &obj) => vec![Trigger::Object(obj)],
                Ok(watcher::Event::Apply(_)) => Vec::new(),
                Ok(watcher::Event::Delete(obj)) => {
                    if let Some(g) = st.generations.as_mut() {
                        g.forget(&obj);
                    }
                    Vec::new()
                }
                Ok(watcher::Event::Init) => {
                    st.listing.clear();
                    Vec::new()
                }
                Ok(watcher::Event::InitApply(obj)) => {
                    if changed(st, &obj) {
                        st.listing.push(ObjectRef::from_obj(&obj));
                    }
                    Vec::new()
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(g) = st.generations.as_mut() {
                        g.retain_cached(&cache);
                    }
                    std::mem::take(&mut st.listing)
                        .into_iter()
                        .map(Trigger::Listed)
                        .collect()
                }
                Err(e) => vec![Trigger::Failed(e)],
            };
            futures::future::ready(Some(futures::stream::iter(out)))
        })
        .flatten()
        .filter_map(move |t| {
            futures::future::ready(match t {
                Trigger::Object(obj) => Some(Ok(obj)),
                // Gone from the cache: deleted since it was listed.
                Trigger::Listed(r) => store.get(&r).map(|obj| Ok((*obj).clone())),
                Trigger::Failed(e) => Some(Err(e)),
            })
        })
}

/// Watches every `K` of `api` into `writer`'s cache, which keeps only the objects `cached`
/// accepts (each after `modify`, e.g. [`trim`]); calls `on_event` with every event, whole,
/// once the cache has it (indexes); and yields the cached objects to reconcile when
/// `triggers` says so ([`reconcile_triggers`]), retrying the watch with backoff.
pub fn cached_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    mut writer: Writer<K>,
    modify: impl FnMut(&mut K) + Send + 'static,
    cached: impl Fn(&K) -> bool + Send + 'static,
    on_event: impl Fn(&watcher::Event<K>) + Send + 'static,
    triggers: Triggers,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    let store = writer.as_reader();
    let events = watcher(api, config)
        .modify(modify)
        .try_filter_map(move |event| {
            futures::future::ready(Ok(cache_event(event, &mut writer, &cached, &on_event)))
        })
        .default_backoff();
    reconcile_triggers(events, store, triggers)
}

/// Applies `event` to a cache that keeps only the objects `cached` accepts, then hands it
/// whole to `on_event`, and returns what the cache saw of it: an object the cache does not
/// keep is deleted from it (`Apply`) or left out of a listing (`InitApply`), so it triggers
/// no reconcile either. (kube-runtime's `reflector` caches every object it is given.)
fn cache_event<K>(
    event: watcher::Event<K>,
    writer: &mut Writer<K>,
    cached: &impl Fn(&K) -> bool,
    on_event: &impl Fn(&watcher::Event<K>),
) -> Option<watcher::Event<K>>
where
    K: Resource + Clone,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let keep = match &event {
        watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => cached(obj),
        _ => true,
    };
    if keep {
        writer.apply_watcher_event(&event);
        on_event(&event);
        return Some(event);
    }
    on_event(&event);
    match event {
        watcher::Event::Apply(obj) => {
            let gone = watcher::Event::Delete(obj);
            writer.apply_watcher_event(&gone);
            Some(gone)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::Client;
    use kube::api::{Api, ListParams, ObjectMeta};
    use kube::config::{KubeConfigOptions, Kubeconfig};
    use lifeboat_api::ReceivedAlert;
    use lifeboat_sim::SimCluster;
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::ControllerConfig;
    use kube::runtime::reflector;

    fn cm(name: &str) -> ConfigMap {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert(LAST_APPLIED.to_string(), "{}".to_string());
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                annotations: Some(annotations),
                managed_fields: Some(vec![Default::default()]),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(items: Vec<Result<ConfigMap, watcher::Error>>) -> Vec<String> {
        items
            .into_iter()
            .map(|r| r.unwrap().metadata.name.unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_relists_objects_are_released_only_when_the_list_is_complete() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let (store, writer) = reflector::store();
        let mut out = Box::pin(reconcile_triggers(
            reflector::reflector(writer, rx),
            store,
            Triggers::EveryChange,
        ));
        let send = |ev| tx.unbounded_send(Ok(ev)).unwrap();
        send(watcher::Event::Apply(cm("a")));
        assert_eq!(names(vec![out.next().await.unwrap()]), vec!["a"]);
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(cm("b")));
        send(watcher::Event::InitApply(cm("c")));
        send(watcher::Event::Delete(cm("a")));
        assert!(
            futures::poll!(out.next()).is_pending(),
            "objects of an unfinished listing (or deletions) must not be released"
        );
        send(watcher::Event::InitDone);
        let released = vec![out.next().await.unwrap(), out.next().await.unwrap()];
        assert_eq!(names(released), vec!["b", "c"]);
        // A listing that restarts drops what the aborted one had gathered.
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(cm("stale")));
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(cm("d")));
        send(watcher::Event::InitDone);
        assert_eq!(names(vec![out.next().await.unwrap()]), vec!["d"]);
    }

    #[tokio::test]
    async fn only_new_objects_and_generations_trigger_and_gone_objects_are_forgotten() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let (store, writer) = reflector::store();
        let mut out = Box::pin(reconcile_triggers(
            reflector::reflector(writer, rx),
            store,
            Triggers::NewGeneration,
        ));
        let send = |ev| tx.unbounded_send(Ok(ev)).unwrap();
        let obj = |name: &str, uid: &str, generation: i64, status: &str| {
            let mut o = cm(name);
            o.metadata.uid = Some(uid.into());
            o.metadata.generation = Some(generation);
            o.metadata.resource_version = Some(status.into());
            o
        };
        send(watcher::Event::Apply(obj("a", "u1", 1, "created")));
        assert_eq!(names(vec![out.next().await.unwrap()]), vec!["a"]);
        send(watcher::Event::Apply(obj("a", "u1", 1, "status written")));
        assert!(
            futures::poll!(out.next()).is_pending(),
            "its own status write must not trigger"
        );
        send(watcher::Event::Apply(obj("a", "u1", 2, "spec changed")));
        assert_eq!(names(vec![out.next().await.unwrap()]), vec!["a"]);
        // Deleted, then created again under the same name: a new object.
        send(watcher::Event::Delete(obj("a", "u1", 2, "deleted")));
        send(watcher::Event::Apply(obj("a", "u2", 1, "created")));
        assert_eq!(names(vec![out.next().await.unwrap()]), vec!["a"]);
        // A re-list releases what changed while the watch was down, not the rest.
        send(watcher::Event::Apply(obj("b", "u3", 1, "created")));
        assert_eq!(names(vec![out.next().await.unwrap()]), vec!["b"]);
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(obj(
            "a",
            "u2",
            1,
            "status written",
        )));
        send(watcher::Event::InitApply(obj("b", "u3", 2, "spec changed")));
        send(watcher::Event::InitDone);
        assert_eq!(names(vec![out.next().await.unwrap()]), vec!["b"]);
        assert!(futures::poll!(out.next()).is_pending());
    }

    #[test]
    fn a_cached_plan_keeps_its_validation_but_not_its_last_run() {
        let mut plan: RecoveryPlan = serde_json::from_value(json!({
            "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
            "metadata": {"name": "p", "namespace": "default", "generation": 2},
            "spec": {"alertLabels": {"a": "b"}, "steps": []},
            "status": {"observedGeneration": 2, "validation": "Valid", "stepCount": 0,
                "lastRun": "p-x", "lastRunPhase": "Completed",
                "lastRunTime": "2026-01-01T00:00:00Z",
                "conditions": [{"type": "Valid", "status": "True", "reason": "Valid",
                    "message": "the plan is valid (0 step(s))",
                    "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        trim_plan(&mut plan);
        let status = plan.status.unwrap();
        assert_eq!(status.validation.as_deref(), Some("Valid"));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            status.conditions.len(),
            1,
            "the plan controller writes them back"
        );
        assert!(status.last_run.is_none() && status.last_run_phase.is_none());
        assert!(status.last_run_time.is_none());
    }

    #[test]
    fn trimming_drops_managed_fields_and_the_last_applied_copy() {
        let mut obj = cm("a");
        obj.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("keep".into(), "me".into());
        trim(&mut obj);
        assert!(obj.metadata.managed_fields.is_none(), "managedFields kept");
        assert_eq!(
            obj.metadata.annotations.unwrap().keys().collect::<Vec<_>>(),
            vec!["keep"],
            "only kubectl's last-applied copy is dropped"
        );
        let mut bare = cm("b");
        trim(&mut bare);
        assert!(bare.metadata.annotations.is_none());
    }

    #[test]
    fn objects_the_cache_does_not_keep_are_evicted_but_still_indexed() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        let kept = |cm: &ConfigMap| cm.data.is_none();
        let seen = std::sync::Mutex::new(Vec::new());
        let on_event = |ev: &watcher::Event<ConfigMap>| {
            if let watcher::Event::Apply(cm) | watcher::Event::InitApply(cm) = ev {
                seen.lock().unwrap().push(cm.metadata.name.clone().unwrap());
            }
        };
        let mut done = cm("done");
        done.data = Some([("k".to_string(), "v".to_string())].into());
        let key = |name: &str| ObjectRef::<ConfigMap>::new(name);

        let mut apply = |ev| cache_event(ev, &mut writer, &kept, &on_event);
        assert!(matches!(
            apply(watcher::Event::Init),
            Some(watcher::Event::Init)
        ));
        assert!(
            apply(watcher::Event::InitApply(done.clone())).is_none(),
            "left out of the listing, so never reconciled"
        );
        assert!(apply(watcher::Event::InitApply(cm("open"))).is_some());
        assert!(apply(watcher::Event::InitDone).is_some());
        assert!(store.get(&key("open")).is_some());
        assert!(store.get(&key("done")).is_none());

        // An object the cache keeps until it is done: then it leaves the cache, and what
        // follows downstream is a deletion, which triggers nothing.
        let mut finishing = cm("open");
        finishing.data = done.data.clone();
        assert!(matches!(
            apply(watcher::Event::Apply(finishing)),
            Some(watcher::Event::Delete(_))
        ));
        assert!(store.get(&key("open")).is_none());
        // Asked to work again: cached again.
        assert!(matches!(
            apply(watcher::Event::Apply(cm("open"))),
            Some(watcher::Event::Apply(_))
        ));
        assert!(store.get(&key("open")).is_some());
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["done", "open", "open", "open"],
            "the indexes see every object, whole"
        );
    }

    /// More than one list page (kube's watcher lists 500 at a time), so the re-list reaches
    /// the controllers in several parts.
    const BEHIND: usize = 700;

    async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> (bool, String)) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (ok, state) = done().await;
            if ok {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} within 60 s: {state}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Alerts and plans created while the controller's watches are down, learnt only from
    /// the re-list after a 410, are all processed and validated.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn objects_learnt_from_a_relist_after_410_are_all_reconciled() {
        let sim = SimCluster::start("relist").await.unwrap();
        for crd in lifeboat_api::crds::all() {
            sim.apply_object(serde_json::to_value(&crd).unwrap())
                .unwrap();
        }
        for ns in ["lifeboat-system", "default"] {
            sim.apply_object(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns}}))
                .unwrap();
        }
        let kc = Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap();
        let client = Client::try_from(cfg).unwrap();
        let shutdown = CancellationToken::new();
        let ctl = tokio::spawn(crate::serve(
            client.clone(),
            ControllerConfig {
                namespace: "lifeboat-system".into(),
                webhook: None,
                health_addr: "127.0.0.1:0".parse().unwrap(),
                leader_election: false,
                lease_name: "lifeboat-test".into(),
                identity: "test".into(),
                addr_file: None,
                alert_retention: None,
            },
            shutdown.clone(),
        ));

        let alert = |name: &str| {
            json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"labels": {"alertname": name}}})
        };
        let plan = |name: &str| {
            json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
                "metadata": {"name": name, "namespace": "default", "generation": 1},
                "spec": {"alertLabels": {"plan": name}, "steps": [{"type": "readField",
                    "readField": {"apiVersion": "v1", "resource": "configmaps",
                        "namespace": "default", "name": "x", "fieldPath": "data",
                        "outputKey": "x"}}]}})
        };
        let alerts: Api<ReceivedAlert> = Api::namespaced(client.clone(), "default");
        let plans: Api<RecoveryPlan> = Api::namespaced(client.clone(), "default");
        // The controllers are up: an alert and a plan are handled.
        sim.apply_object(alert("probe")).unwrap();
        sim.apply_object(plan("probe")).unwrap();
        wait_until("the first alert processed", async || {
            let a = alerts.get_opt("probe").await.unwrap();
            let ok = a.and_then(|a| a.status).is_some_and(|s| s.processed);
            (ok, "probe alert unprocessed".into())
        })
        .await;

        // The watches break with the history compacted, and cannot be re-opened for a while;
        // meanwhile alerts and plans arrive.
        sim.faults().set_error_rate(Some("watch"), 1.0);
        sim.faults().expire_watches();
        for i in 0..BEHIND {
            sim.apply_object(alert(&format!("a{i:04}"))).unwrap();
            sim.apply_object(plan(&format!("p{i:04}"))).unwrap();
        }
        // The watch resumes from a version older than the history: 410, and a re-list.
        sim.faults().clear();

        wait_until("every alert processed", async || {
            let list = alerts.list(&ListParams::default()).await.unwrap();
            let waiting: Vec<String> = list
                .items
                .iter()
                .filter(|a| !a.status.as_ref().is_some_and(|s| s.processed))
                .filter_map(|a| a.metadata.name.clone())
                .collect();
            let state = format!(
                "{} of {} alerts unprocessed, e.g. {:?}",
                waiting.len(),
                list.items.len(),
                waiting.iter().take(5).collect::<Vec<_>>()
            );
            (list.items.len() == BEHIND + 1 && waiting.is_empty(), state)
        })
        .await;
        wait_until("every plan validated", async || {
            let list = plans.list(&ListParams::default()).await.unwrap();
            let waiting = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().is_none_or(|s| s.validation.is_none()))
                .count();
            let state = format!("{waiting} of {} plans unvalidated", list.items.len());
            (list.items.len() == BEHIND + 1 && waiting == 0, state)
        })
        .await;

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), ctl)
            .await
            .expect("controller stops")
            .unwrap()
            .unwrap();
    }
}
