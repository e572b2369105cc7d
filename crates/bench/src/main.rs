//! `lifeboat-bench`: runs the whole benchmark and prints the table.
//!
//! ```text
//! cargo build --release -p lifeboat -p lifeboat-bench
//! target/release/lifeboat-bench [--quick] [--json FILE]
//! target/release/lifeboat-bench --real   # needs `bash scripts/build-kube.sh` first
//! ```
//!
//! Exit code 0 when every correctness check passed (timings never fail the command),
//! 1 when one failed, 2 when the benchmark could not run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lifeboat_bench::Options;

/// Benchmarks lifeboat against simulated (or, with --real, real) clusters and a kubectl
/// runbook.
#[derive(Parser, Debug)]
#[command(name = "lifeboat-bench", version, about)]
struct Args {
    /// Small sizes for CI (well under a minute); fails only on correctness checks.
    #[arg(long)]
    quick: bool,
    /// The failover, the kubectl runbook and the alert storm (2 000 alerts unless
    /// --storm-alerts is given), on three real control planes
    /// (target/kube/lifeboat-kube, built by `bash scripts/build-kube.sh`).
    #[arg(long, conflicts_with = "quick")]
    real: bool,
    /// The real control plane binary for --real (default: target/kube/lifeboat-kube next
    /// to this executable's target directory, or $LIFEBOAT_KUBE_BIN).
    #[arg(long, value_name = "PATH", requires = "real")]
    kube: Option<PathBuf>,
    /// Also write the whole report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The lifeboat binary to run as the controller (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    lifeboat: Option<PathBuf>,
    /// criterion's output directory to report engine microbenchmarks from
    /// (default: target/criterion).
    #[arg(long, value_name = "DIR")]
    criterion_dir: Option<PathBuf>,
    /// Measured failover repetitions.
    #[arg(long)]
    failover_runs: Option<usize>,
    /// Measured kubectl runbook repetitions.
    #[arg(long)]
    runbook_runs: Option<usize>,
    /// Alerts (and plans) of the storm.
    #[arg(long)]
    storm_alerts: Option<usize>,
    /// Keep the working directory (kubeconfigs, controller log).
    #[arg(long)]
    keep_dir: bool,
    /// Leave every process on every CPU. By default, on the simulator, the harness and the
    /// simulated clusters run on one half of the CPUs and the controller (and the kubectl
    /// runbook and the floor's client) on the other.
    #[arg(long)]
    share_cpus: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut opts = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    opts.real = args.real;
    opts.kube = args.kube;
    opts.lifeboat = args.lifeboat;
    opts.criterion_dir = args.criterion_dir;
    opts.keep_dir = args.keep_dir;
    if let Some(n) = args.failover_runs {
        opts.failover_runs = n.max(1);
    }
    if let Some(n) = args.runbook_runs {
        opts.runbook_runs = n.max(1);
    }
    if let Some(n) = args
        .storm_alerts
        .or(args.real.then_some(lifeboat_bench::real::REAL_STORM))
    {
        opts.storm.alerts = n.max(1);
        opts.storm.plans = n.max(1);
    }
    // Before the runtime starts its threads, which inherit this thread's CPUs.
    if !args.real && !args.share_cpus {
        match lifeboat_bench::placement::Placement::split() {
            Ok(Some(p)) => {
                if let Err(e) = p.apply() {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
            Ok(None) => eprintln!("one CPU: every process shares it"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // On Ctrl-C the run is dropped, which kills its child processes (the controller, and
    // with --real three control planes of ~300 MiB each) instead of leaving them behind.
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = lifeboat_bench::run(&opts) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let report = match outcome {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("interrupted");
            return ExitCode::from(130);
        }
    };
    println!("{}", report.render());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|text| std::fs::write(path, text).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
