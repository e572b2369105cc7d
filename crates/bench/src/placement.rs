//! Which CPUs the benchmark's processes run on.
//!
//! On the simulator the harness process holds the three simulated clusters, and the
//! controller is a second process on the same machine. Left to the scheduler, both spread
//! over every CPU and take turns on each, and every hand-off between them may cross CPUs.
//! A cluster and its controllers do not share CPUs in production (the API server runs on
//! its own nodes), so by default the CPUs are split in two: the harness and the simulated
//! clusters on the first half, the controller — and whatever plays its part when it is
//! compared: the kubectl runbook and the floor's plain client — on the second.
//! `--share-cpus` leaves every process on every CPU.
//!
//! The split is made on the harness's own thread before its runtime starts (threads
//! inherit it); the controller and the runbook are started through `taskset`, which sets
//! their CPUs before they run.

use std::sync::OnceLock;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;
use serde::Serialize;

/// The two halves of the CPUs this process may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// The harness and the simulated clusters.
    pub harness: Vec<usize>,
    /// The controller, the kubectl runbook and the floor's client.
    pub controller: Vec<usize>,
}

static PLACEMENT: OnceLock<Placement> = OnceLock::new();

impl Placement {
    /// The CPUs this process may use, split in two halves; `None` with fewer than two.
    pub fn split() -> Result<Option<Placement>, String> {
        let allowed = sched_getaffinity(Pid::from_raw(0))
            .map_err(|e| format!("cannot read this process's CPUs: {e}"))?;
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&c| allowed.is_set(c).unwrap_or(false))
            .collect();
        Ok(Placement::halves(&cpus))
    }

    fn halves(cpus: &[usize]) -> Option<Placement> {
        if cpus.len() < 2 {
            return None;
        }
        let (harness, controller) = cpus.split_at(cpus.len() / 2);
        Some(Placement {
            harness: harness.to_vec(),
            controller: controller.to_vec(),
        })
    }

    /// Puts the calling thread (and the threads it starts later) on the harness's CPUs,
    /// and makes this the placement of the run.
    pub fn apply(self) -> Result<(), String> {
        let taskset = std::process::Command::new("taskset")
            .arg("--version")
            .output();
        if !taskset.as_ref().is_ok_and(|o| o.status.success()) {
            return Err(
                "taskset (util-linux) is needed to start the controller on its own CPUs; \
                 install it or pass --share-cpus"
                    .to_string(),
            );
        }
        sched_setaffinity(Pid::from_raw(0), &cpu_set(&self.harness)?)
            .map_err(|e| format!("cannot set this process's CPUs: {e}"))?;
        PLACEMENT
            .set(self)
            .map_err(|_| "the CPUs were already placed".to_string())
    }

    /// The calling thread on the controller's CPUs (a thread that plays the controller's
    /// part in this process).
    pub fn enter_controller_cpus(&self) -> Result<(), String> {
        sched_setaffinity(Pid::from_raw(0), &cpu_set(&self.controller)?)
            .map_err(|e| format!("cannot set a thread's CPUs: {e}"))
    }

    /// The placement of this run, if the CPUs were split.
    pub fn current() -> Option<&'static Placement> {
        PLACEMENT.get()
    }
}

fn cpu_set(cpus: &[usize]) -> Result<CpuSet, String> {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(|e| format!("CPU {c}: {e}"))?;
    }
    Ok(set)
}

/// `taskset`'s list form: `1`, `2,3`.
fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A command for `program` that runs on the controller's CPUs when the CPUs are split
/// (through `taskset`, so that it and every thread it starts run there from the start).
pub fn controller_command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    match Placement::current() {
        Some(p) => {
            let mut cmd = tokio::process::Command::new("taskset");
            cmd.arg("--cpu-list").arg(list(&p.controller)).arg(program);
            cmd
        }
        None => tokio::process::Command::new(program),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cpus_are_split_in_two_halves() {
        assert_eq!(Placement::halves(&[0]), None);
        let two = Placement::halves(&[0, 1]).unwrap();
        assert_eq!((two.harness, two.controller), (vec![0], vec![1]));
        let five = Placement::halves(&[0, 2, 3, 5, 7]).unwrap();
        assert_eq!((five.harness, five.controller), (vec![0, 2], vec![3, 5, 7]));
        assert_eq!(list(&[3, 5, 7]), "3,5,7");
    }
}
