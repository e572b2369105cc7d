//! `--real`: the failover and the kubectl runbook on three real control planes (mgmt, db,
//! proxy; `testing/kube`, one `lifeboat-kube` process each), with the request counts taken
//! from the API servers' audit logs.
//!
//! Everything else is the simulated run's code on [`Backend::Kube`]: the same world, plan,
//! controller flags, webhook, watch timing, runbook script and report. Opt-in: it needs the
//! Go-built control plane, takes about a gigabyte of memory, and says nothing the
//! simulated run does not about the storm, matching or memory, which it leaves out.

use std::time::Instant;

use crate::controller;
use crate::report::{ControlPlane, Machine, Report};
use crate::world::{Backend, World, WorldError};
use crate::{BenchError, Compared, Options, Workdir, kube_server, progress, start_and_compare};

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
        mut ctl,
        obs,
        memory,
        cmp,
    } = start_and_compare(opts, &world, &binary, &work, &mut failures, t0).await?;
    if !ctl.alive() {
        failures.push(format!(
            "the controller exited during the benchmark; its log: {}",
            ctl.log.display()
        ));
    }
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
        failover: Some(cmp.failover),
        runbook: Some(cmp.runbook),
        kubectl_startup: cmp.kubectl_startup,
        ratio: cmp.ratio,
        floor: cmp.floor,
        floor_ratio: cmp.floor_ratio,
        storm: None,
        memory,
        matching: None,
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
