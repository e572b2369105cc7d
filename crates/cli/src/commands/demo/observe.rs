//! What the demo watches while the failover runs: the alerts and runs in mgmt (for the
//! timeline) and the PerconaPGClusters in db, where a tiny task plays the Percona operator.
//! Everything seen is sent, time-stamped, on one channel so the story prints in order.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use lifeboat_api::{ReceivedAlert, RecoveryRun};
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::world::{self, LIFEBOAT_NS};
use crate::output;
use crate::watch::{Tracker, Transition};

/// Something the demo saw, with when it saw it.
#[derive(Debug)]
pub enum Seen {
    /// The HTTP status of the webhook POST.
    WebhookAnswered(String),
    AlertRecorded(String),
    AlertProcessed {
        name: String,
        runs: Vec<String>,
        why: Option<String>,
    },
    RunCreated(String),
    Transition(Transition),
    RunFinished(Box<RecoveryRun>),
    Operator(String),
}

pub type Events = UnboundedSender<(Instant, Seen)>;

/// Sends ReceivedAlert events: first sight, and when processed.
pub fn watch_alerts(client: Client, tx: Events) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<ReceivedAlert> = Api::namespaced(client, LIFEBOAT_NS);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        let mut seen = BTreeSet::new();
        let mut processed = BTreeSet::new();
        while let Some(item) = stream.next().await {
            let alert = match item {
                Ok(a) => a,
                Err(err) => {
                    tracing::warn!(error = %err, "demo: alert watch error");
                    continue;
                }
            };
            let name = alert.metadata.name.clone().unwrap_or_default();
            let now = Instant::now();
            if seen.insert(name.clone()) {
                let _ = tx.send((now, Seen::AlertRecorded(name.clone())));
            }
            if let Some(status) = alert.status.as_ref().filter(|s| s.processed)
                && processed.insert(name.clone())
            {
                let why = status.message.clone().or(status.reason.clone());
                let _ = tx.send((
                    now,
                    Seen::AlertProcessed {
                        name,
                        runs: status.runs.clone(),
                        why,
                    },
                ));
            }
        }
    })
}

/// Sends RecoveryRun events: creation, every step transition, and the finished run.
pub fn watch_runs(client: Client, tx: Events) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<RecoveryRun> = Api::namespaced(client, LIFEBOAT_NS);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        let mut trackers: BTreeMap<String, Tracker> = BTreeMap::new();
        let mut finished = BTreeSet::new();
        while let Some(item) = stream.next().await {
            let run = match item {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!(error = %err, "demo: run watch error");
                    continue;
                }
            };
            let name = run.metadata.name.clone().unwrap_or_default();
            let now = Instant::now();
            if !trackers.contains_key(&name) {
                let _ = tx.send((now, Seen::RunCreated(name.clone())));
            }
            let tracker = trackers.entry(name.clone()).or_default();
            for t in tracker.update(&run) {
                let _ = tx.send((now, Seen::Transition(t)));
            }
            if output::run_phase(&run).is_finished() && finished.insert(name) {
                let _ = tx.send((now, Seen::RunFinished(Box::new(run))));
            }
        }
    })
}

/// Plays the Percona operator in the db cluster: a cluster switched to primary
/// (`spec.standby.enabled: false`) starts serving and publishes `status.host`; a cluster
/// switched to standby stops serving and clears it.
pub fn percona_operator(client: Client, tx: Events) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<DynamicObject> = world::pg_api(&client);
        let stream = watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            let obj = match item {
                Ok(o) => o,
                Err(err) => {
                    tracing::warn!(error = %err, "demo: PerconaPGCluster watch error");
                    continue;
                }
            };
            let name = obj.metadata.name.clone().unwrap_or_default();
            let standby = obj.data["spec"]["standby"]["enabled"]
                .as_bool()
                .unwrap_or(false);
            let host = obj.data["status"]["host"].as_str().map(str::to_string);
            let (status, story) = match (standby, host) {
                (false, None) => {
                    let host = world::pg_host(&name);
                    (
                        json!({"status": {"state": "ready", "host": host}}),
                        format!("db operator: {name} promoted, now serving at {host}"),
                    )
                }
                (true, Some(_)) => (
                    json!({"status": {"state": "standby", "host": null}}),
                    format!("db operator: {name} is a standby now, no longer serving"),
                ),
                _ => continue,
            };
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
            {
                Ok(_) => {
                    let _ = tx.send((Instant::now(), Seen::Operator(story)));
                }
                Err(err) => {
                    let _ = tx.send((
                        Instant::now(),
                        Seen::Operator(format!("db operator: cannot update {name}: {err}")),
                    ));
                }
            }
        }
    })
}
