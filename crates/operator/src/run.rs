//! [`serve`]: everything `lifeboat controller` runs, assembled.
//!
//! Every replica serves health/metrics and the webhook; the replica holding the Lease also
//! runs the plan, run and alert controllers. On shutdown the controllers stop taking new
//! work, a step in flight is abandoned between API calls (it stays Running and is executed
//! again by the next leader), status writes in flight finish, and the Lease is released.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use lifeboat_api::conditions::REASON_INVALID;
use lifeboat_api::{ReceivedAlert, RecoveryPlan, RecoveryRun};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::clusters::ClusterRegistry;
use crate::config::ControllerConfig;
use crate::context::{Context, Events, SystemClock};
use crate::controller::{alerts, plans, runs, stream};
use crate::index::Indexes;
use crate::last_run::LastRuns;
use crate::leader::{LeaderElector, LeaderError, LeaseTimings};
use crate::recent_runs::RecentRuns;
use crate::telemetry::{HealthError, Metrics, Readiness, serve_health};
use crate::webhook::{self, WebhookError};

/// Name lifeboat reports Events and logs under.
pub const REPORTER: &str = "lifeboat-controller";
/// Readiness component of the controllers (ready once their caches are synced).
const READY_CONTROLLERS: &str = "controllers";
/// Readiness component of the webhook receiver (ready once bound).
const READY_WEBHOOK: &str = "webhook";
/// How long the controllers' caches may take to sync before the alert controller starts
/// anyway (it then re-checks nothing it already processed; better late than never).
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// Alerts (and plans) reconciled at once. Each reconcile is a few API round trips; more in
/// flight only queues requests at the API server and holds their buffers in memory. Runs are
/// not bounded: a run waiting on a Job or a field must not hold others back.
const ALERT_CONCURRENCY: u16 = 64;
const PLAN_CONCURRENCY: u16 = 32;

/// How long the controllers may take to stop once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the controller process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Health(#[from] HealthError),
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error("leader election: {0}")]
    Leader(#[from] LeaderError),
    #[error("cannot write the address file {path}: {source}")]
    AddrFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("leadership was lost; stopping so a fresh process can take over")]
    LeadershipLost,
}

/// Runs lifeboat's controller process until `shutdown` is cancelled (or leadership is lost,
/// which returns [`OperatorError::LeadershipLost`]), with the default lease timings.
pub async fn serve(
    client: Client,
    cfg: ControllerConfig,
    shutdown: CancellationToken,
) -> Result<(), OperatorError> {
    serve_with_lease(client, cfg, LeaseTimings::default(), shutdown).await
}

/// [`serve`] with the given leader-election timings (used only when
/// `cfg.leader_election` is set).
pub async fn serve_with_lease(
    client: Client,
    cfg: ControllerConfig,
    lease: LeaseTimings,
    shutdown: CancellationToken,
) -> Result<(), OperatorError> {
    let mut registry = Registry::default();
    let metrics = Metrics::new(&mut registry);
    let readiness = Readiness::new();
    let health = serve_health(
        cfg.health_addr,
        Arc::new(registry),
        readiness.clone(),
        shutdown.clone(),
    )
    .await?;
    let webhook_addr = match cfg.webhook.clone() {
        Some(w) => {
            readiness.require(READY_WEBHOOK);
            let addr = webhook::serve(client.clone(), w, metrics.clone(), shutdown.clone()).await?;
            readiness.set_ready(READY_WEBHOOK);
            tracing::info!(%addr, "webhook receiver listening");
            Some(addr)
        }
        None => None,
    };
    if let Some(path) = &cfg.addr_file {
        write_addr_file(path, webhook_addr, health)?;
    }

    let leader = if cfg.leader_election {
        let elector = LeaderElector::new(
            client.clone(),
            &cfg.namespace,
            &cfg.lease_name,
            &cfg.identity,
        )
        .with_timings(lease);
        match elector.acquire(shutdown.clone()).await {
            Ok(guard) => {
                metrics.set_leader(true);
                Some(guard)
            }
            Err(LeaderError::Cancelled) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    } else {
        metrics.set_leader(true);
        None
    };

    // Executing stops on shutdown or when leadership is lost.
    let work = shutdown.child_token();
    let lost = leader.as_ref().map(|g| g.lost());
    if let Some(lost) = lost.clone() {
        let work = work.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = lost.cancelled() => work.cancel(),
                () = work.cancelled() => {}
            }
        });
    }

    run_all_controllers(client, &cfg, metrics.clone(), readiness, work.clone()).await;
    work.cancel();
    metrics.set_leader(false);

    if lost.as_ref().is_some_and(CancellationToken::is_cancelled) {
        return Err(OperatorError::LeadershipLost);
    }
    if let Some(guard) = leader
        && let Err(e) = guard.release().await
    {
        tracing::warn!(error = %e, "could not release the Lease; it will expire");
    }
    Ok(())
}

fn write_addr_file(
    path: &Path,
    webhook: Option<SocketAddr>,
    health: SocketAddr,
) -> Result<(), OperatorError> {
    let err = |source| OperatorError::AddrFile {
        path: path.display().to_string(),
        source,
    };
    let body = serde_json::json!({
        "webhook": webhook.map(|a| a.to_string()),
        "health": health.to_string(),
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body.to_string()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Runs the plan, run and alert controllers until `work` is cancelled.
pub async fn run_all_controllers(
    client: Client,
    cfg: &ControllerConfig,
    metrics: Metrics,
    readiness: Readiness,
    work: CancellationToken,
) {
    readiness.require(READY_CONTROLLERS);
    let (clusters, drive_secrets) = ClusterRegistry::watch(client.clone(), &cfg.namespace);
    let secrets_task = tokio::spawn(drive_secrets);

    let watch_config = watcher::Config::default().any_semantic();
    // The caches and the alert controller's indexes are fed by the same watch events.
    let indexes = Arc::new(Indexes::default());
    // Objects reach a controller only once its cache has them, also after a re-list
    // (controller/stream.rs).
    let (plans_reader, plans_writer) = reflector::store::<RecoveryPlan>();
    let plan_index = indexes.clone();
    let plans_stream = stream::cached_watch(
        Api::<RecoveryPlan>::all(client.clone()),
        watch_config.clone(),
        plans_writer,
        stream::trim_plan,
        |_| true,
        move |ev| plan_index.plans.apply(ev),
        stream::Triggers::NewGeneration,
    );
    let (runs_reader, runs_writer) = reflector::store::<RecoveryRun>();
    let run_index = indexes.clone();
    let recent_runs = Arc::new(RecentRuns::default());
    let seen_runs = recent_runs.clone();
    let runs_stream = stream::cached_watch(
        Api::<RecoveryRun>::all(client.clone()),
        watch_config.clone(),
        runs_writer,
        stream::trim,
        |run| !runs::is_done(run),
        move |ev| {
            run_index.runs.apply(ev);
            if let watcher::Event::Apply(run) | watcher::Event::InitApply(run) = ev
                && let (Some(ns), Some(plan)) = (run.namespace(), run.spec.plan_name.clone())
            {
                seen_runs.seen(&(ns, plan), &run.name_any());
            }
        },
        stream::Triggers::NewGeneration,
    );
    let clusters_changed = clusters.changes();

    let ctx = Arc::new(Context {
        client: client.clone(),
        clusters,
        events: Events::new(
            client.clone(),
            REPORTER,
            Some(cfg.identity.clone()),
            metrics.clone(),
        ),
        metrics,
        clock: Arc::new(SystemClock),
        plans: plans_reader.clone(),
        runs: runs_reader.clone(),
        indexes: indexes.clone(),
        recent_runs,
        shutdown: work.clone(),
        alert_retention: cfg.alert_retention,
        last_runs: LastRuns::new(client.clone()),
    });

    // Plans are validated against the registered clusters: validate them all again when
    // that set changes.
    let plan_controller = Controller::for_stream(plans_stream, plans_reader.clone())
        .with_config(controller::Config::default().concurrency(PLAN_CONCURRENCY))
        .reconcile_all_on(futures::stream::select(
            clusters_changed,
            every(plans::REVALIDATE_EVERY),
        ))
        .graceful_shutdown_on(work.clone().cancelled_owned())
        .run(plans::reconcile, plans::error_policy, ctx.clone())
        .for_each(|_| async {});
    let recovery_run_controller = Controller::for_stream(runs_stream, runs_reader.clone())
        .graceful_shutdown_on(work.clone().cancelled_owned())
        .run(runs::reconcile, runs::error_policy, ctx.clone())
        .for_each(|_| async {});
    let plans_task = tokio::spawn(plan_controller);
    let runs_task = tokio::spawn(recovery_run_controller);

    // The alert controller decides with the plan and run caches and indexes: start it once
    // they are synced, so an alert is never judged against an empty cache.
    let synced = async {
        crate::cache::store_ready(&plans_reader).await;
        crate::cache::store_ready(&runs_reader).await;
        indexes.plans.wait_ready().await;
        indexes.runs.wait_ready().await;
    };
    tokio::select! {
        r = tokio::time::timeout(CACHE_SYNC_TIMEOUT, synced) => {
            if r.is_err() {
                tracing::warn!("plan and run caches not synced in time; starting the alert controller anyway");
            }
        }
        () = work.cancelled() => {}
    }
    let (alerts_reader, alerts_writer) = reflector::store::<ReceivedAlert>();
    let alert_index = indexes.clone();
    let alerts_stream = stream::cached_watch(
        Api::<ReceivedAlert>::all(client.clone()),
        watch_config,
        alerts_writer,
        stream::trim,
        |alert| !alert.status.as_ref().is_some_and(|s| s.processed),
        move |ev| alert_index.processed_alerts.apply(ev),
        stream::Triggers::EveryChange,
    );
    let expiry_task = tokio::spawn(alerts::expire_processed(ctx.clone(), work.clone()));
    let alert_controller = Controller::for_stream(alerts_stream, alerts_reader)
        .with_config(controller::Config::default().concurrency(ALERT_CONCURRENCY))
        .graceful_shutdown_on(work.clone().cancelled_owned())
        .run(alerts::reconcile, alerts::error_policy, ctx.clone())
        .for_each(|_| async {});
    let alerts_task = tokio::spawn(alert_controller);
    let gauges_task = tokio::spawn(refresh_cache_gauges(
        ctx.metrics.clone(),
        plans_reader,
        runs_reader,
        work.clone(),
    ));
    readiness.set_ready(READY_CONTROLLERS);
    tracing::info!("controllers running");

    work.cancelled().await;
    // In-flight reconciles finish promptly (a step in flight is abandoned at its next await;
    // status writes complete). A controller whose cache never synced would wait for it
    // forever, so the wait is bounded.
    let tasks = [plans_task, runs_task, alerts_task];
    let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
    if tokio::time::timeout(SHUTDOWN_GRACE, futures::future::join_all(tasks))
        .await
        .is_err()
    {
        tracing::warn!("controllers did not stop within {SHUTDOWN_GRACE:?}; aborting them");
        for a in aborts {
            a.abort();
        }
    }
    secrets_task.abort();
    gauges_task.abort();
    expiry_task.abort();
    // The newest outcome of each plan is written even when it was reported a moment ago.
    ctx.last_runs.flush().await;
    readiness.set(READY_CONTROLLERS, false);
}

/// A tick every `period` (the first after one period): a timer for all objects at once,
/// where a requeue per object would keep one scheduler entry per object.
fn every(period: Duration) -> impl futures::Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(
        tokio::time::interval_at(tokio::time::Instant::now() + period, period),
        |mut interval| async move {
            interval.tick().await;
            Some(((), interval))
        },
    )
}

/// How often the gauges counted from the caches are refreshed: well under a scrape interval.
const CACHE_GAUGES_EVERY: Duration = Duration::from_secs(2);

/// Keeps `lifeboat_runs_in_flight` and `lifeboat_plans_invalid` up to date by counting the
/// caches, which the watches keep current (also across re-lists and deletions, which
/// counting at each transition would have to get right one by one).
async fn refresh_cache_gauges(
    metrics: Metrics,
    plans: reflector::Store<RecoveryPlan>,
    runs: reflector::Store<RecoveryRun>,
    work: CancellationToken,
) {
    let mut every = tokio::time::interval(CACHE_GAUGES_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = work.cancelled() => return,
        }
        let in_flight = runs
            .state()
            .iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .is_some_and(|s| s.started_at.is_some() && !s.phase.is_finished())
            })
            .count();
        let invalid = plans
            .state()
            .iter()
            .filter(|p| {
                p.status.as_ref().and_then(|s| s.validation.as_deref()) == Some(REASON_INVALID)
            })
            .count();
        metrics.set_cache_gauges(in_flight, invalid);
    }
}
