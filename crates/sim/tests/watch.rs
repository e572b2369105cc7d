//! Watch semantics: resume by resourceVersion, bookmarks, timeouts, 410 Expired, and a
//! `kube::runtime::watcher` that survives bookmarks, dropped streams and expiry without
//! missing or duplicating a change.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{raw, start, wait_for};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

fn lines(body: &Value) -> Vec<Value> {
    body.as_str()
        .map(|s| {
            s.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .or_else(|| Some(vec![body.clone()]))
        .unwrap_or_default()
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}})).unwrap()
}

#[tokio::test]
async fn raw_watch_resumes_bookmarks_times_out_and_expires() {
    let (cluster, client) = start("rawwatch").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let a = cms
        .create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap();
    let rv_a = a.resource_version().unwrap();
    cms.create(&PostParams::default(), &cm("b", "1"))
        .await
        .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();

    // Resume after `a` was created: b ADDED, a DELETED; bookmarks; closed at the timeout.
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv_a}&allowWatchBookmarks=true&timeoutSeconds=2"
    );
    let (code, body) = raw(&cluster, "GET", &path, "", b"").await;
    assert_eq!(code, 200);
    let events = lines(&body);
    let kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(kinds[0], ("ADDED".into(), "b".into()), "events: {kinds:?}");
    assert_eq!(
        kinds[1],
        ("DELETED".into(), "a".into()),
        "events: {kinds:?}"
    );
    assert!(
        kinds.iter().any(|(t, _)| t == "BOOKMARK"),
        "a watch allowing bookmarks gets them: {kinds:?}"
    );

    // Label selectors apply to watches; rv=0 starts with the current objects.
    let (_, body) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=0&timeoutSeconds=1",
        "",
        b"",
    )
    .await;
    let events = lines(&body);
    assert_eq!(events.len(), 1, "one current object: {events:?}");
    assert_eq!(events[0]["type"], "ADDED");

    // After expiry, resuming from an old version is an ERROR event with 410 Expired.
    cluster.faults().expire_watches();
    let (code, body) = raw(
        &cluster,
        "GET",
        &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv_a}"),
        "",
        b"",
    )
    .await;
    assert_eq!(code, 200);
    let events = lines(&body);
    assert_eq!(events[0]["type"], "ERROR", "{events:?}");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
    assert_eq!(events[0]["object"]["kind"], "Status");
}

#[tokio::test]
async fn history_window_is_bounded() {
    let (cluster, _client) = start("window").await;
    for i in 0..(lifeboat_sim::store::HISTORY_LIMIT + 50) {
        cluster
            .apply_object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}"), "namespace": "default"}}))
            .unwrap();
    }
    let (_, body) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2",
        "",
        b"",
    )
    .await;
    let events = lines(&body);
    assert_eq!(
        events[0]["type"], "ERROR",
        "a version older than the window is expired"
    );
    assert_eq!(events[0]["object"]["message"], "too old resource version");
}

/// Everything the watcher has seen: per object, the versions in order; and the current view.
#[derive(Default)]
struct Seen {
    versions: BTreeMap<String, Vec<u64>>,
    current: BTreeMap<String, u64>,
}

#[tokio::test]
async fn kube_watcher_survives_bookmarks_drops_and_expiry() {
    let (cluster, client) = start("watcher").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = seen.clone();
    let stream = watcher(cms.clone(), watcher::Config::default());
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(ev) = stream.next().await {
            let Ok(ev) = ev else { continue };
            let mut s = s.lock().unwrap();
            match ev {
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                    let rv: u64 = o.resource_version().unwrap().parse().unwrap();
                    let v = s.versions.entry(o.name_any()).or_default();
                    if v.last() != Some(&rv) {
                        // A relist after 410 re-delivers the current version: not a new change.
                        v.push(rv);
                    }
                    s.current.insert(o.name_any(), rv);
                }
                watcher::Event::Delete(o) => {
                    s.current.remove(&o.name_any());
                }
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
        }
    });
    let mut written: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    fn record_in(written: &mut BTreeMap<String, Vec<u64>>, o: &ConfigMap) {
        written
            .entry(o.name_any())
            .or_default()
            .push(o.resource_version().unwrap().parse().unwrap())
    }
    let caught_up = |seen: Arc<Mutex<Seen>>, want: BTreeMap<String, u64>| async move {
        let s = seen.lock().unwrap();
        (s.current == want).then_some(())
    };
    let state = |cms: Api<ConfigMap>| async move {
        cms.list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|o| {
                (
                    o.name_any(),
                    o.resource_version().unwrap().parse::<u64>().unwrap(),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };

    // Phase 1: creates while the first watch is open.
    for i in 0..5 {
        record_in(
            &mut written,
            &cms.create(&PostParams::default(), &cm(&format!("o{i}"), "1"))
                .await
                .unwrap(),
        );
    }
    let want = state(cms.clone()).await;
    wait_for("watcher sees the creates", Duration::from_secs(10), || {
        caught_up(seen.clone(), want.clone())
    })
    .await;

    // Phase 2: bookmarks flow (at least one interval), then streams are dropped mid-way.
    tokio::time::sleep(lifeboat_sim::watch::BOOKMARK_INTERVAL * 2).await;
    cluster.faults().drop_watches();
    for i in 0..5 {
        let p = json!({"data": {"v": "2"}});
        record_in(
            &mut written,
            &cms.patch(&format!("o{i}"), &PatchParams::default(), &Patch::Merge(&p))
                .await
                .unwrap(),
        );
    }
    cms.delete("o4", &DeleteParams::default()).await.unwrap();
    let want = state(cms.clone()).await;
    wait_for(
        "watcher sees changes after a dropped stream",
        Duration::from_secs(10),
        || caught_up(seen.clone(), want.clone()),
    )
    .await;
    {
        // Every change so far was observed exactly once, in order.
        let s = seen.lock().unwrap();
        for (name, versions) in &written {
            assert_eq!(
                s.versions.get(name),
                Some(versions),
                "versions of {name} seen vs written"
            );
        }
    }

    // Phase 3: streams are closed after a short time, repeatedly, while writes continue.
    cluster
        .faults()
        .drop_watches_after(Duration::from_millis(150));
    for round in 0..5 {
        for i in 0..4 {
            let p = json!({"data": {"v": format!("r{round}")}});
            record_in(
                &mut written,
                &cms.patch(&format!("o{i}"), &PatchParams::default(), &Patch::Merge(&p))
                    .await
                    .unwrap(),
            );
        }
        tokio::task::yield_now().await;
    }
    let want = state(cms.clone()).await;
    wait_for(
        "watcher sees changes across short-lived streams",
        Duration::from_secs(10),
        || caught_up(seen.clone(), want.clone()),
    )
    .await;
    {
        let s = seen.lock().unwrap();
        for (name, versions) in &written {
            assert_eq!(
                s.versions.get(name),
                Some(versions),
                "versions of {name} seen vs written across drops"
            );
        }
    }
    cluster.faults().drop_watches_after(Duration::ZERO);

    // Phase 4: history expired: the watcher gets 410, relists, and converges.
    cluster.reset_stats();
    cluster.faults().expire_watches();
    record_in(
        &mut written,
        &cms.create(&PostParams::default(), &cm("late", "1"))
            .await
            .unwrap(),
    );
    cms.delete("o3", &DeleteParams::default()).await.unwrap();
    let want = state(cms.clone()).await;
    wait_for(
        "watcher converges after 410 Expired",
        Duration::from_secs(10),
        || caught_up(seen.clone(), want.clone()),
    )
    .await;
    let stats = cluster.stats();
    assert!(
        stats.count("list", "configmaps") >= 2,
        "the watcher re-listed after 410 (one list is the test's own):\n{stats}"
    );
    {
        let s = seen.lock().unwrap();
        for (name, versions) in &s.versions {
            let sorted: BTreeSet<u64> = versions.iter().copied().collect();
            assert_eq!(
                sorted.len(),
                versions.len(),
                "no version of {name} seen twice: {versions:?}"
            );
            assert!(
                versions.windows(2).all(|w| w[0] < w[1]),
                "versions of {name} in order: {versions:?}"
            );
            let written_set: BTreeSet<u64> = written[name].iter().copied().collect();
            assert!(
                sorted.is_subset(&written_set),
                "only written versions of {name} seen"
            );
        }
        assert!(
            !s.current.contains_key("o3") && !s.current.contains_key("o4"),
            "deletes observed"
        );
        assert_eq!(
            s.current.get("late"),
            want.get("late"),
            "created after expiry observed"
        );
    }
    task.abort();
}

#[tokio::test]
async fn kube_watcher_with_streaming_lists() {
    let (_cluster, client) = start("streaming").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.create(&PostParams::default(), &cm("before", "1"))
        .await
        .unwrap();
    let seen: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let init_done = Arc::new(Mutex::new(false));
    let (s, d) = (seen.clone(), init_done.clone());
    let stream = watcher(cms.clone(), watcher::Config::default().streaming_lists());
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitApply(o)) | Ok(watcher::Event::Apply(o)) => {
                    s.lock().unwrap().insert(o.name_any());
                }
                Ok(watcher::Event::InitDone) => *d.lock().unwrap() = true,
                _ => {}
            }
        }
    });
    wait_for(
        "initial events end with a bookmark",
        Duration::from_secs(10),
        || {
            let d = init_done.clone();
            async move { (*d.lock().unwrap()).then_some(()) }
        },
    )
    .await;
    assert!(
        seen.lock().unwrap().contains("before"),
        "initial events include existing objects"
    );
    cms.create(&PostParams::default(), &cm("after", "1"))
        .await
        .unwrap();
    wait_for(
        "change after the initial events",
        Duration::from_secs(10),
        || {
            let s = seen.clone();
            async move { s.lock().unwrap().contains("after").then_some(()) }
        },
    )
    .await;
    task.abort();
}

#[tokio::test]
async fn watches_end_when_the_client_goes_away() {
    let (cluster, client) = start("watch-gone").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let stream = cms
        .watch(
            &kube::api::WatchParams::default()
                .timeout(290)
                .disable_bookmarks(),
            "0",
        )
        .await
        .unwrap();
    wait_for("watch open on the server", Duration::from_secs(5), || {
        let c = cluster.clone();
        async move { (c.open_watches() == 1).then_some(()) }
    })
    .await;
    drop(stream);
    wait_for(
        "server-side watch ended after the client left",
        Duration::from_secs(5),
        || {
            let c = cluster.clone();
            async move { (c.open_watches() == 0).then_some(()) }
        },
    )
    .await;
}

/// A burst of writes reaches a watch whole and in order: the events waiting when the stream
/// writes are sent together (as kube-apiserver flushes only once its queue is empty), and
/// a client still reads every one of them as its own event.
#[tokio::test]
async fn a_burst_of_writes_reaches_a_watch_whole_and_in_order() {
    const N: usize = 400;
    let (_cluster, client) = start("burstwatch").await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let list = cms.list(&Default::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let params = kube::api::WatchParams::default().timeout(30);
    let mut events = cms.watch(&params, &rv).await.unwrap().boxed();
    let creates = futures::stream::iter(0..N)
        .map(|i| {
            let cms = cms.clone();
            async move {
                cms.create(&PostParams::default(), &cm(&format!("burst-{i:03}"), "1"))
                    .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let read = async {
        let mut seen: Vec<(u64, String)> = Vec::new();
        while seen.len() < N {
            match events.next().await {
                Some(Ok(kube::api::WatchEvent::Added(o))) => {
                    let rv = o.resource_version().unwrap().parse().unwrap();
                    seen.push((rv, o.name_any()));
                }
                other => panic!(
                    "unexpected watch item after {} events: {other:?}",
                    seen.len()
                ),
            }
        }
        seen
    };
    let (created, seen) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(creates, read)
    })
    .await
    .expect("every event within 30 s");
    assert!(created.iter().all(Result::is_ok));
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "events in resourceVersion order"
    );
    let names: BTreeSet<&String> = seen.iter().map(|(_, n)| n).collect();
    assert_eq!(names.len(), N, "every object once");
}
