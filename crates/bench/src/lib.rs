//! lifeboat's benchmark harness.
//!
//! One command measures everything SPEC §9 asks for, against simulated clusters started in
//! this process and the real `lifeboat controller` run as a child process:
//!
//! 1. the seed-002 failover (4 steps, no Job) through the webhook, repeated: webhook POST →
//!    ReceivedAlert stored, stored → first step started, webhook → run Completed, and the
//!    API requests per run by verb against the minimum the plan needs ([`failover`]);
//! 2. the same four operations as a bash + kubectl runbook against the same clusters, in
//!    the same run, and the ratio of the medians ([`runbook`]);
//! 3. an alert storm and its re-send ([`storm`]);
//! 4. the controller's memory idle and with the storm's plans, alerts and runs present;
//! 5. matching one alert against 10 000 plans ([`matching`]) and the engine's criterion
//!    results, if `cargo bench -p lifeboat-engine` has been run ([`criterion`]).
//!
//! Timings are taken client-side from watch events; correctness checks along the way
//! (every run Completed, exactly one run per alert and plan, nothing created by the
//! re-send) make the command fail, timings never do.
//!
//! With `--real` ([`real`]) the failover, the runbook and the request counts (1 and 2) run
//! instead on three real control planes (`testing/kube`: etcd, kube-apiserver,
//! kube-controller-manager), the same code on another [`world::Backend`]; requests are then
//! counted from the API servers' audit logs.

pub mod alerts;
pub mod api_counts;
pub mod audit;
pub mod controller;
pub mod cpu;
pub mod criterion;
pub mod failover;
pub mod floor;
pub mod identity;
pub mod kube_server;
pub mod matching;
pub mod observe;
pub mod placement;
pub mod real;
pub mod report;
pub mod runbook;
pub mod scheduler_hop;
pub mod stats;
pub mod storm;
pub mod world;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use controller::Controller;
use observe::Observer;
use report::{Machine, MemoryReport, Report};
use world::{Backend, World};

/// What to run and how much of it.
#[derive(Clone, Debug)]
pub struct Options {
    pub quick: bool,
    /// Only the failover and the runbook, on real control planes ([`real`]).
    pub real: bool,
    /// The `lifeboat-kube` binary for `real` (default: see [`kube_server::locate_binary`]).
    pub kube: Option<PathBuf>,
    /// Measured failover repetitions (after `failover_warmup`).
    pub failover_runs: usize,
    pub failover_warmup: usize,
    pub runbook_runs: usize,
    pub runbook_warmup: usize,
    pub storm: storm::StormConfig,
    pub matching_plans: usize,
    pub matching_lookups: usize,
    /// The `lifeboat` binary (default: next to this executable).
    pub lifeboat: Option<PathBuf>,
    /// criterion's output directory (default: `target/criterion`).
    pub criterion_dir: Option<PathBuf>,
    /// Keep the working directory (kubeconfigs, controller log) instead of deleting it.
    pub keep_dir: bool,
}

impl Options {
    /// The full benchmark (minutes).
    pub fn full() -> Options {
        Options {
            quick: false,
            real: false,
            kube: None,
            failover_runs: 200,
            failover_warmup: 5,
            runbook_runs: 20,
            runbook_warmup: 2,
            storm: storm::StormConfig {
                plans: 10_000,
                alerts: 10_000,
                batch: 100,
                timeout: Duration::from_secs(600),
            },
            matching_plans: 10_000,
            matching_lookups: 20_000,
            lifeboat: None,
            criterion_dir: None,
            keep_dir: false,
        }
    }

    /// The CI run: every scenario, smaller, well under a minute.
    pub fn quick() -> Options {
        Options {
            quick: true,
            failover_runs: 20,
            failover_warmup: 2,
            runbook_runs: 3,
            runbook_warmup: 1,
            storm: storm::StormConfig {
                plans: 500,
                alerts: 500,
                batch: 100,
                timeout: Duration::from_secs(30),
            },
            matching_plans: 10_000,
            matching_lookups: 2_000,
            ..Options::full()
        }
    }
}

/// Errors that stop the benchmark before it can measure (not correctness failures, which
/// are reported in [`Report::failures`]).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Controller(#[from] controller::ControllerError),
    #[error(transparent)]
    World(#[from] world::WorldError),
    #[error(transparent)]
    Failover(#[from] failover::FailoverError),
    #[error(transparent)]
    Kube(#[from] kube_server::KubeError),
    #[error("cannot create a working directory: {0}")]
    Dir(std::io::Error),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Prints a progress line on stderr (the report goes to stdout).
pub(crate) fn progress(t0: Instant, what: &str) {
    eprintln!("[{:>6.1}s] {what}", t0.elapsed().as_secs_f64());
}

/// The benchmark's working directory (kubeconfigs, logs; the real servers' state) and its
/// HTTP client for the webhook.
pub(crate) struct Workdir {
    tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub http: reqwest::Client,
}

impl Workdir {
    pub fn new() -> Result<Workdir, BenchError> {
        let tmp = tempfile::Builder::new()
            .prefix("lifeboat-bench-")
            .tempdir()
            .map_err(BenchError::Dir)?;
        let dir = tmp.path().to_path_buf();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(16)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Workdir { tmp, dir, http })
    }

    /// Deletes the directory, unless asked to keep it or something failed.
    pub fn finish(self, keep: bool, controller_log: &std::path::Path) {
        if keep {
            let kept = self.tmp.keep();
            eprintln!(
                "working directory kept: {} (controller log: {})",
                kept.display(),
                controller_log.display()
            );
        }
    }
}

/// The failover through lifeboat and the same failover as a kubectl runbook, on the same
/// clusters (either backend), and the ratio of their medians.
pub(crate) struct Comparison {
    pub failover: failover::FailoverResult,
    /// The same minimum requests sent by a plain client (run before the controller).
    pub floor: Option<floor::FloorResult>,
    /// lifeboat's failover median ÷ the floor's median.
    pub floor_ratio: Option<f64>,
    pub runbook: runbook::RunbookResult,
    pub kubectl_startup: Option<stats::Summary>,
    pub ratio: Option<f64>,
}

/// Runs [`Comparison`]'s measurements with the controller `ctl` already running against
/// `world`'s mgmt; `memory.after_failover` is read between the two.
pub(crate) async fn compare(
    opts: &Options,
    world: &World,
    obs: &Observer,
    ctl: &Controller,
    work: &Workdir,
    memory: &mut MemoryReport,
    t0: Instant,
) -> Comparison {
    progress(
        t0,
        &format!(
            "failover through lifeboat: {} + {} warm-up",
            opts.failover_runs, opts.failover_warmup
        ),
    );
    let failover = failover::run(
        world,
        obs,
        &work.http,
        &ctl.webhook_url(),
        opts.failover_warmup,
        opts.failover_runs,
    )
    .await;
    memory.after_failover = ctl.memory();

    progress(
        t0,
        &format!(
            "failover as a kubectl runbook: {} + {} warm-up",
            opts.runbook_runs, opts.runbook_warmup
        ),
    );
    let runbook = runbook::run(world, &work.dir, opts.runbook_warmup, opts.runbook_runs).await;
    let kubectl_startup = runbook::kubectl_startup(if opts.quick { 3 } else { 10 }).await;
    let ratio = runbook::ratio(runbook.wall, failover.webhook_to_completed);
    Comparison {
        floor: None,
        floor_ratio: None,
        failover,
        runbook,
        kubectl_startup,
        ratio,
    }
}

/// The failover's controller running against a world, its comparison with the runbook, and
/// the alert storm after it.
pub(crate) struct Compared {
    pub(crate) ctl: Controller,
    pub(crate) obs: Observer,
    pub(crate) memory: MemoryReport,
    pub(crate) cmp: Comparison,
    pub(crate) storm: storm::StormResult,
}

/// Creates the failover plan, starts the observer and the controller on `world`, compares
/// the failover with the runbook, then runs the alert storm; their failures go to
/// `failures`. Shared by the simulated and the real-control-plane runs.
pub(crate) async fn start_and_compare(
    opts: &Options,
    world: &World,
    binary: &std::path::Path,
    work: &Workdir,
    failures: &mut Vec<String>,
    t0: Instant,
) -> Result<Compared, BenchError> {
    failover::create_plan(world).await?;
    let obs = Observer::start(&world.mgmt.client).await;

    // Before the controller starts, so that it never acts on the floor's objects.
    progress(
        t0,
        &format!(
            "failover floor (the minimum requests, plain client): {} + {} warm-up",
            opts.failover_runs, opts.failover_warmup
        ),
    );
    let floor = floor::run(world, opts.failover_warmup, opts.failover_runs).await;
    failures.extend(floor.failures.iter().cloned());

    progress(t0, &format!("starting {} controller", binary.display()));
    let kubeconfig = world.mgmt.kubeconfig_of(identity::Actor::Lifeboat);
    let mut ctl = Controller::start(binary, kubeconfig, &work.dir, &work.http).await?;
    let mut memory = MemoryReport {
        idle: ctl.memory(),
        ..Default::default()
    };
    let mut cmp = compare(opts, world, &obs, &ctl, work, &mut memory, t0).await;
    cmp.floor_ratio = floor::ratio(cmp.failover.webhook_to_completed, floor.wall);
    cmp.floor = Some(floor);
    failures.extend(cmp.failover.failures.iter().cloned());
    failures.extend(cmp.runbook.failures.iter().cloned());
    let storm =
        storm_and_memory(opts, world, &obs, work, &mut ctl, &mut memory, failures, t0).await;
    Ok(Compared {
        ctl,
        obs,
        memory,
        cmp,
        storm,
    })
}

/// The alert storm against the running controller, then its memory with the storm's
/// objects present; a controller that exited meanwhile is a failure.
#[allow(clippy::too_many_arguments)]
async fn storm_and_memory(
    opts: &Options,
    world: &World,
    obs: &observe::Observer,
    work: &Workdir,
    ctl: &mut controller::Controller,
    memory: &mut MemoryReport,
    failures: &mut Vec<String>,
    t0: Instant,
) -> storm::StormResult {
    progress(
        t0,
        &format!(
            "alert storm: {} plans, {} alerts in webhooks of {}, then again",
            opts.storm.plans, opts.storm.alerts, opts.storm.batch
        ),
    );
    let storm = storm::run(
        world,
        obs,
        &work.http,
        &ctl.webhook_url(),
        (ctl.pid, &format!("http://{}/metrics", ctl.health)),
        opts.storm,
    )
    .await;
    failures.extend(storm.failures.iter().cloned());
    memory.loaded = ctl.memory();
    if let Some((m, took)) = ctl.settled_memory(Duration::from_secs(60)).await {
        memory.settled = Some(m);
        memory.settle_s = took.as_secs_f64();
    }
    memory.plans = storm.plans + 1;
    memory.alerts = storm.alerts_present;
    memory.runs = storm.runs_present;
    if !ctl.alive() {
        failures.push(format!(
            "the controller exited during the benchmark; its log: {}",
            ctl.log.display()
        ));
    }
    storm
}

/// Runs the whole benchmark on simulated clusters, or with `opts.real` the real control
/// plane section ([`real::run`]).
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    if opts.real {
        return real::run(opts).await;
    }
    let t0 = Instant::now();
    let binary = controller::locate_binary(opts.lifeboat.as_deref())?;
    let work = Workdir::new()?;
    let mut failures = Vec::new();

    progress(t0, "matching microbenchmark");
    let matching = matching::run(opts.matching_plans, opts.matching_lookups);
    failures.extend(matching.failures.iter().cloned());
    progress(t0, "kube-runtime scheduler hop");
    let hop = scheduler_hop::run(200, Duration::from_millis(3)).await;
    failures.extend(hop.failures.iter().cloned());

    progress(t0, "starting simulated clusters mgmt, db, proxy");
    let world = World::start(&work.dir, &Backend::Sim).await?;
    let Compared {
        ctl,
        obs,
        memory,
        cmp,
        storm,
    } = start_and_compare(opts, &world, &binary, &work, &mut failures, t0).await?;

    let criterion_dir = opts.criterion_dir.clone().or_else(criterion::default_dir);
    let criterion = criterion_dir
        .as_deref()
        .map(criterion::read)
        .unwrap_or_default();

    let log = ctl.log.clone();
    ctl.stop().await;
    drop(obs);
    work.finish(opts.keep_dir || !failures.is_empty(), &log);

    let mut report = Report {
        mode: if opts.quick { "quick" } else { "full" }.into(),
        machine: Machine::detect(),
        controller: binary.display().to_string(),
        failover: Some(cmp.failover),
        runbook: Some(cmp.runbook),
        kubectl_startup: cmp.kubectl_startup,
        ratio: cmp.ratio,
        floor: cmp.floor,
        floor_ratio: cmp.floor_ratio,
        storm: Some(storm),
        memory,
        matching: Some(matching),
        scheduler_hop: Some(hop),
        criterion,
        control_plane: None,
        targets: Vec::new(),
        failures,
        total_s: t0.elapsed().as_secs_f64(),
    };
    report.judge();
    Ok(report)
}
