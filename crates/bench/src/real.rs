//! `--real`: the failover and the kubectl runbook on three real control planes (mgmt, db,
//! proxy; `testing/kube`, one `lifeboat-kube` process each), with the request counts taken
//! from the API servers' audit logs.
//!
//! Then the alert storm (smaller by default: [`REAL_STORM`]), with the server's own write
//! throughput measured just before it, in the same run.
//!
//! Everything else is the simulated run's code on [`Backend::Kube`]: the same world, plan,
//! controller flags, webhook, watch timing, runbook script and report. Opt-in: it needs the
//! Go-built control plane, takes about a gigabyte of memory, and says nothing the
//! simulated run does not about matching, which it leaves out.

use std::time::Instant;

use crate::controller;
use crate::report::{ControlPlane, Machine, Report};
use crate::world::{Backend, World, WorldError};
use crate::{BenchError, Compared, Options, Workdir, kube_server, progress, start_and_compare};

/// Plans and alerts of the storm on the real control planes unless `--storm-alerts` says
/// otherwise: every write is an etcd commit, so the simulated run's 10 000 would take
/// minutes and say no more.
pub const REAL_STORM: usize = 2_000;

/// Runs the real control plane section.
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    let t0 = Instant::now();
    // Both binaries first: a missing one fails before anything starts.
    let binary = controller::locate_binary(opts.lifeboat.as_deref())?;
    let kube = kube_server::locate_binary(opts.kube.as_deref())?;
    let work = Workdir::new()?;
    let mut failures = Vec::new();

    progress(
        t0,
        &format!(
            "starting real control planes mgmt, db, proxy ({})",
            kube.display()
        ),
    );
    let world = World::start(
        &work.dir,
        &Backend::Kube {
            binary: kube.clone(),
        },
    )
    .await?;
    let version = world
        .mgmt
        .client
        .apiserver_version()
        .await
        .map_err(|source| WorldError::Api {
            doing: "read mgmt's /version".into(),
            source,
        })?;
    let Compared {
        ctl,
        obs,
        memory,
        cmp,
        storm,
    } = start_and_compare(opts, &world, &binary, &work, &mut failures, t0).await?;
    for c in world.clusters() {
        if !failures.is_empty()
            && let Some(tail) = c.server_log()
        {
            eprintln!("control plane {} log ends:\n{tail}", c.name());
        }
    }

    let log = ctl.log.clone();
    ctl.stop().await;
    drop(obs);
    drop(world);
    work.finish(opts.keep_dir || !failures.is_empty(), &log);

    let mut report = Report {
        mode: "real".into(),
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
        matching: None,
        scheduler_hop: None,
        criterion: Vec::new(),
        control_plane: Some(ControlPlane {
            kubernetes: kube_server::kubernetes_release(&kube)
                .unwrap_or_else(|| "(release unknown)".into()),
            server_version: version.git_version,
            binary: kube.display().to_string(),
            counted_from: "the API servers' audit logs, per ServiceAccount".into(),
        }),
        targets: Vec::new(),
        failures,
        total_s: t0.elapsed().as_secs_f64(),
    };
    report.judge();
    Ok(report)
}
