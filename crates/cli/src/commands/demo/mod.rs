//! `lifeboat demo`: the FerretDB failover of seed 002, end to end, in one process.
//!
//! Three simulated clusters on loopback (`mgmt` where lifeboat runs, `db` with two
//! PerconaPGClusters, `proxy` with HAProxy's configuration), lifeboat's controller running
//! in-process, the plan from `examples/ferretdb-failover.yaml`, and an Alertmanager webhook
//! that starts it all. The output tells the story: the setting, the run step by step, what
//! changed in each cluster, and how long each part took.

mod observe;
mod world;

use std::time::Duration;

use anyhow::Context;

use crate::commands::KubeContext;
use kube::Api;
use kube::api::PostParams;
use lifeboat_api::{RecoveryPlan, RecoveryRun, RunPhase, StepPhase};
use lifeboat_operator::{ControllerConfig, WebhookConfig};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::observe::Seen;
use self::world::{Cluster, LIFEBOAT_NS, PLAN_FILE};
use super::{EXIT_FAILED, EXIT_OK};
use crate::output;
use crate::watch::Transition;
use lifeboat_operator::serve;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print only the outcome.
    #[arg(long, short)]
    pub quiet: bool,
    /// Give up if the failover has not finished this long after the alert.
    #[arg(long, default_value = "30s", value_parser = crate::commands::duration_arg)]
    pub timeout: Duration,
    /// Gate the failover on an approval step: the run pauses in WaitingForApproval, and the
    /// demo approves it (as `lifeboat approve` would) once the pause has been shown.
    #[arg(long)]
    pub with_approval: bool,
}

/// Prints unless `--quiet`.
struct Story {
    quiet: bool,
}

impl Story {
    fn say(&self, text: impl AsRef<str>) {
        if !self.quiet {
            println!("{}", text.as_ref());
        }
    }
    fn chapter(&self, n: u32, title: &str) {
        self.say(format!("\n[{n}/6] {title}"));
    }
}

const ALERT_NAME: &str = "PostgresPrimaryDown";

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let story = Story { quiet: args.quiet };
    story.say(
        "lifeboat demo: a FerretDB database failover, end to end, on simulated clusters\n\
         \n\
         FerretDB serves MongoDB clients on PostgreSQL run by the Percona operator. The\n\
         primary database cluster `cluster1` has just failed. lifeboat will receive the\n\
         alert from Alertmanager, make the standby `cluster2` the primary, and point\n\
         HAProxy at it - in one run of a RecoveryPlan, with nobody typing kubectl.",
    );

    story.chapter(
        1,
        "Starting three simulated Kubernetes clusters on loopback",
    );
    let mgmt = Cluster::start("mgmt").await?;
    let db = Cluster::start("db").await?;
    let proxy = Cluster::start("proxy").await?;
    world::prepare_db(&db).await?;
    world::prepare_proxy(&proxy).await?;
    for (c, what) in [
        (&mgmt, "lifeboat runs here".to_string()),
        (
            &db,
            format!(
                "PerconaPGClusters {}/cluster1 (primary) and cluster2 (standby)",
                world::DB_NS
            ),
        ),
        (
            &proxy,
            format!(
                "HAProxy ({}/haproxy-config -> cluster1, load balancer {})",
                world::PROXY_NS,
                world::PROXY_IP
            ),
        ),
    ] {
        story.say(format!("      {:<6} {}   {what}", c.name(), c.sim.url()));
    }

    story.chapter(
        2,
        "Installing lifeboat's CRDs in mgmt and registering the db and proxy clusters",
    );
    world::prepare_mgmt(&mgmt).await?;
    for c in [&db, &proxy] {
        let secret = world::register(&mgmt, c).await?;
        story.say(format!(
            "      cluster {:<6} -> Secret {LIFEBOAT_NS}/{secret} (label {}={})",
            c.name(),
            lifeboat_api::LABEL_CLUSTER_SECRET,
            lifeboat_api::CLUSTER_SECRET_TYPE
        ));
    }

    story.chapter(3, "Starting the lifeboat controller in this process");
    let workdir = std::env::temp_dir().join(format!("lifeboat-demo-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)
        .with_context(|| format!("cannot create {}", workdir.display()))?;
    let shutdown = CancellationToken::new();
    let controller = start_controller(&mgmt, &workdir, shutdown.clone()).await;
    let outcome = match controller {
        Ok((handle, webhook)) => {
            story.say(format!(
                "      watching namespace {LIFEBOAT_NS}; Alertmanager webhook receiver on \
                 http://{webhook}/webhook"
            ));
            let result = failover(&story, &args, &mgmt, &db, &proxy, &webhook).await;
            shutdown.cancel();
            if tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .is_err()
            {
                tracing::warn!("the controller did not stop within 10s");
            }
            result
        }
        Err(err) => Err(err),
    };
    let _ = std::fs::remove_dir_all(&workdir);
    for c in [mgmt, db, proxy] {
        c.sim.shutdown().await;
    }
    let run = outcome?;
    let phase = output::run_phase(&run);
    Ok(if phase == RunPhase::Completed {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// Starts `serve` on mgmt with loopback listeners and no leader election; returns
/// its task and the webhook address once it listens.
async fn start_controller(
    mgmt: &Cluster,
    workdir: &std::path::Path,
    shutdown: CancellationToken,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, String)> {
    let addr_file = workdir.join("addresses.json");
    let loopback: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    let config = ControllerConfig {
        namespace: LIFEBOAT_NS.to_string(),
        webhook: Some(WebhookConfig::new(loopback, LIFEBOAT_NS)),
        health_addr: loopback,
        leader_election: false,
        lease_name: "lifeboat-controller".into(),
        identity: "lifeboat-demo".into(),
        addr_file: Some(addr_file.clone()),
        alert_retention: None,
    };
    let client = mgmt.client.clone();
    let mut handle = tokio::spawn(async move {
        if let Err(err) = serve(client, config, shutdown).await {
            eprintln!("error: the controller stopped: {err:#}");
        }
    });
    // The controller writes its bound addresses once it listens.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(text) = std::fs::read_to_string(&addr_file)
            && let Ok(addrs) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(webhook) = addrs.get("webhook").and_then(|w| w.as_str())
        {
            return Ok((handle, webhook.to_string()));
        }
        if handle.is_finished() {
            let _ = (&mut handle).await;
            anyhow::bail!("the controller stopped before it was listening");
        }
        if Instant::now() > deadline {
            handle.abort();
            anyhow::bail!("the controller was not listening after 15s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Chapters 4 to 6: apply the plan, fire the alert, follow the run, show what changed.
async fn failover(
    story: &Story,
    args: &Args,
    mgmt: &Cluster,
    db: &Cluster,
    proxy: &Cluster,
    webhook: &str,
) -> anyhow::Result<RecoveryRun> {
    story.chapter(4, &format!("Applying the plan {PLAN_FILE}"));
    let plan = apply_plan(mgmt, args.with_approval).await?;
    story.say(format!(
        "      RecoveryPlan {LIFEBOAT_NS}/{} answers alerts labelled {}:",
        plan.metadata.name.as_deref().unwrap_or("?"),
        plan.spec
            .alert_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (i, step) in plan.spec.steps.iter().enumerate() {
        story.say(format!(
            "        {}. {:<40} {:<10} on {}",
            i + 1,
            step.display_name(),
            step.type_.as_str(),
            step.cluster.as_deref().unwrap_or("mgmt")
        ));
    }
    match wait_plan_validated(mgmt).await {
        Some((verdict, problems)) if verdict == "Invalid" => {
            anyhow::bail!(
                "the controller rejected the plan:\n  {}",
                problems.join("\n  ")
            );
        }
        Some((verdict, _)) => story.say(format!("      The controller checked it: {verdict}.")),
        None => story.say("      (the controller has not reported on the plan yet)"),
    }

    let touched = world::touched(db, proxy);
    let mut before = Vec::new();
    for t in &touched {
        before.push(t.snapshot().await?);
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let watchers = [
        observe::watch_alerts(mgmt.client.clone(), tx.clone()),
        observe::watch_runs(mgmt.client.clone(), tx.clone()),
        observe::percona_operator(db.client.clone(), tx.clone()),
    ];

    story.chapter(
        5,
        &format!(
            "Alertmanager fires {ALERT_NAME}: POST http://{webhook}/webhook \
             (Alertmanager webhook v4)"
        ),
    );
    story.say("      (times in ms after the alert was sent, as seen by this demo's watches)");
    let t0 = Instant::now();
    let stamp = |t: Instant| {
        format!(
            "      +{:>5}ms  ",
            t.saturating_duration_since(t0).as_millis()
        )
    };
    let status = send_alert(webhook).await?;
    let answered = Instant::now();
    let _ = tx.send((answered, Seen::WebhookAnswered(status)));

    let mut times = Timings::new(t0, answered, plan.spec.steps.len());
    let deadline = t0 + args.timeout;
    let mut finished = None;
    let mut run_name: Option<String> = None;
    // Set when the run pauses for approval; the demo approves once the batch is shown.
    let mut waiting = false;
    while finished.is_none() {
        let next = tokio::time::timeout_at(deadline, rx.recv()).await;
        let Ok(Some(first)) = next else {
            for w in &watchers {
                w.abort();
            }
            anyhow::bail!(
                "the failover did not finish within {}",
                output::duration(args.timeout)
            );
        };
        // The watches run concurrently: print what has arrived in the order it was seen.
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        batch.sort_by_key(|(at, _)| *at);
        for (at, seen) in batch {
            match seen {
                Seen::WebhookAnswered(status) => {
                    story.say(format!("{}webhook answered {status}", stamp(at)));
                }
                Seen::AlertRecorded(name) => {
                    times.alert.get_or_insert(at);
                    story.say(format!("{}ReceivedAlert {name} recorded", stamp(at)));
                }
                Seen::AlertProcessed { name, runs, why } => {
                    if runs.is_empty() {
                        for w in &watchers {
                            w.abort();
                        }
                        anyhow::bail!(
                            "ReceivedAlert {name} started no run: {}",
                            why.unwrap_or_else(|| "no reason given".into())
                        );
                    }
                    story.say(format!(
                        "{}ReceivedAlert {name} matched the plan -> run {}",
                        stamp(at),
                        runs.join(", ")
                    ));
                }
                Seen::RunCreated(name) => {
                    times.run_created.get_or_insert(at);
                    run_name.get_or_insert(name.clone());
                    story.say(format!("{}RecoveryRun {name} created", stamp(at)));
                }
                // "created" already says so.
                Seen::Transition(Transition::Run {
                    phase: RunPhase::Pending,
                    ..
                }) => {}
                Seen::Transition(t) => {
                    times.record(at, &t);
                    story.say(format!("{}{}", stamp(at), t.describe()));
                    if matches!(
                        t,
                        Transition::Run {
                            phase: RunPhase::WaitingForApproval,
                            ..
                        }
                    ) {
                        waiting = true;
                    }
                }
                Seen::Operator(text) => story.say(format!("{}{text}", stamp(at))),
                Seen::RunFinished(run) => {
                    times.finished = Some(at);
                    finished = Some(*run);
                }
            }
        }
        if std::mem::take(&mut waiting)
            && let Some(run) = &run_name
        {
            story.say(format!(
                "{}the run waits for a person; the demo approves it, as \
                 `lifeboat approve -n {LIFEBOAT_NS} {run}` would",
                stamp(Instant::now())
            ));
            let said = super::approve::decide(
                &mgmt.client,
                LIFEBOAT_NS,
                run,
                lifeboat_api::ApprovalDecision::Approve,
                Some("approved by lifeboat demo"),
            )
            .await?;
            story.say(format!("{}{said}", stamp(Instant::now())));
        }
    }
    let Some(finished) = finished else {
        anyhow::bail!("the run was not seen finishing");
    };
    // Stop the watches for good before the clusters go away.
    for w in watchers {
        w.abort();
        let _ = w.await;
    }

    story.chapter(6, "What changed");
    let mut after_cfg = String::new();
    for (t, before) in touched.iter().zip(&before) {
        let after = t.snapshot().await?;
        story.say(format!("\n      {}", t.label));
        let diff = output::diff(before, &after);
        for line in diff.lines() {
            story.say(format!("        {line}"));
        }
        if t.name == "haproxy-config" {
            after_cfg = after;
        }
    }

    story.say("\nTimings (as seen by this demo's watches)");
    for line in times.report(&finished) {
        story.say(format!("      {line}"));
    }

    let phase = output::run_phase(&finished);
    let name = finished.metadata.name.as_deref().unwrap_or("?");
    let total = times
        .finished
        .map(|f| output::duration(f.saturating_duration_since(t0)))
        .unwrap_or_default();
    if phase == RunPhase::Completed {
        let host = finished
            .status
            .as_ref()
            .and_then(|s| s.values.get("primaryHost"))
            .and_then(|v| v.as_str())
            .unwrap_or("the new primary");
        let entry = world::proxy_address(proxy)
            .await
            .map(|ip| format!(" Clients connecting to {ip}:5432 now reach it."))
            .unwrap_or_default();
        println!(
            "{}RecoveryRun {name} Completed in {total}: cluster2 is the primary and HAProxy \
             now sends traffic to {host}.{entry}",
            if story.quiet { "" } else { "\n" }
        );
        if !after_cfg.contains(host) {
            println!("warning: the HAProxy configuration does not mention {host}");
        }
        story.say(
            "\nNext: read the plan in examples/ferretdb-failover.yaml, check your own plans with\n\
             `lifeboat validate`, and try `lifeboat sim` to get clusters for kubectl.",
        );
    } else {
        println!(
            "\nRecoveryRun {name} {}: {}",
            phase.as_str(),
            finished
                .status
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default()
        );
        print!("{}", output::run_details(&finished));
    }
    Ok(finished)
}

/// The gate `--with-approval` puts before the failover's first step.
fn approval_gate() -> lifeboat_api::Step {
    let mut step: lifeboat_api::Step = serde_json::from_value(serde_json::json!({
        "type": "approval",
        "title": "On-call engineer approves the failover",
        "timeout": "5m",
        "approval": {"message": "cluster1 is down; promote cluster2?"}
    }))
    .unwrap_or_else(|e| unreachable!("the demo's approval step is valid: {e}"));
    step.cluster = None;
    step
}

/// Creates the example plan in lifeboat's namespace.
async fn apply_plan(mgmt: &Cluster, with_approval: bool) -> anyhow::Result<RecoveryPlan> {
    let mut plan: RecoveryPlan = serde_yaml::from_str(world::PLAN_YAML)
        .with_context(|| format!("{PLAN_FILE} is not a valid RecoveryPlan"))?;
    if with_approval {
        plan.spec.steps.insert(0, approval_gate());
    }
    plan.metadata.namespace = Some(LIFEBOAT_NS.to_string());
    let api: Api<RecoveryPlan> = Api::namespaced(mgmt.client.clone(), LIFEBOAT_NS);
    api.create(&PostParams::default(), &plan)
        .await
        .kube_context(|| "cannot create the RecoveryPlan".to_string())
}

/// Waits (a few seconds at most) for the controller's verdict on the plan.
async fn wait_plan_validated(mgmt: &Cluster) -> Option<(String, Vec<String>)> {
    use futures::StreamExt;
    use kube::runtime::WatchStreamExt;
    let api: Api<RecoveryPlan> = Api::namespaced(mgmt.client.clone(), LIFEBOAT_NS);
    let name = "ferretdb-failover";
    let stream = kube::runtime::watcher::watch_object(api, name).default_backoff();
    let verdict = async {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Ok(Some(plan)) = item
                && let Some(status) = plan.status
                && let Some(v) = status.validation
            {
                return Some((v, status.problems));
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(5), verdict)
        .await
        .ok()
        .flatten()
}

/// POSTs an Alertmanager (payload version 4) notification for one firing alert.
async fn send_alert(webhook: &str) -> anyhow::Result<String> {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let labels = serde_json::json!({
        "alertname": ALERT_NAME,
        "app": "ferretdb",
        "severity": "critical",
        "cluster": "db",
        "instance": "cluster1"
    });
    let payload = serde_json::json!({
        "version": "4",
        "receiver": "lifeboat",
        "status": "firing",
        "groupKey": format!("{{}}:{{alertname=\"{ALERT_NAME}\"}}"),
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": ALERT_NAME},
        "commonLabels": labels,
        "commonAnnotations": {"summary": "PostgreSQL primary cluster1 is down"},
        "externalURL": "http://alertmanager.demo.invalid:9093",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {"summary": "PostgreSQL primary cluster1 is down"},
            "startsAt": now,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.demo.invalid:9090/graph?g0.expr=pg_up%3D%3D0",
            "fingerprint": "5c1e2f3a4b6d7e8f"
        }]
    });
    let response = reqwest::Client::new()
        .post(format!("http://{webhook}/webhook"))
        .json(&payload)
        .send()
        .await
        .context("cannot reach the webhook receiver")?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("the webhook receiver answered {status}: {body}");
    }
    Ok(status.to_string())
}

/// Moments of the failover, as observed.
struct Timings {
    t0: Instant,
    answered: Instant,
    alert: Option<Instant>,
    run_created: Option<Instant>,
    step_started: Vec<Option<Instant>>,
    step_done: Vec<Option<Instant>>,
    finished: Option<Instant>,
}

impl Timings {
    fn new(t0: Instant, answered: Instant, steps: usize) -> Self {
        Timings {
            t0,
            answered,
            alert: None,
            run_created: None,
            step_started: vec![None; steps],
            step_done: vec![None; steps],
            finished: None,
        }
    }

    fn record(&mut self, at: Instant, t: &Transition) {
        if let Transition::Step { index, phase, .. } = t
            && *index < self.step_started.len()
        {
            if self.step_started[*index].is_none() {
                self.step_started[*index] = Some(at);
            }
            if matches!(phase, StepPhase::Succeeded | StepPhase::Failed) {
                self.step_done[*index] = Some(at);
            }
        }
    }

    fn report(&self, run: &RecoveryRun) -> Vec<String> {
        let ms = |from: Instant, to: Option<Instant>| {
            to.map(|t| output::duration(t.saturating_duration_since(from)))
                .unwrap_or_else(|| "-".into())
        };
        let first_step = self.step_started.iter().flatten().min().copied();
        let mut lines = vec![
            format!(
                "{:<44} {}",
                "alert sent -> webhook answered",
                ms(self.t0, Some(self.answered))
            ),
            format!(
                "{:<44} {}",
                "alert sent -> ReceivedAlert recorded",
                ms(self.t0, self.alert)
            ),
            format!(
                "{:<44} {}",
                "alert sent -> RecoveryRun created",
                ms(self.t0, self.run_created)
            ),
            format!(
                "{:<44} {}",
                "alert sent -> first step started",
                ms(self.t0, first_step)
            ),
        ];
        let mut previous_done = first_step;
        for i in 0..self.step_started.len() {
            // A step seen already finished started, at the latest, when the one before
            // it finished.
            let start = self.step_started[i]
                .filter(|_| self.step_done[i] != self.step_started[i])
                .or(previous_done)
                .or(self.step_started[i]);
            let line = match (start, self.step_done[i]) {
                (Some(s), Some(d)) => output::duration(d.saturating_duration_since(s)),
                _ => "-".into(),
            };
            lines.push(format!(
                "  step {} {:<37} {line}",
                i + 1,
                output::step_title(run, i)
            ));
            previous_done = self.step_done[i].or(previous_done);
        }
        lines.push(format!(
            "{:<44} {}",
            "alert sent -> run finished (total)",
            ms(self.t0, self.finished)
        ));
        lines
    }
}
