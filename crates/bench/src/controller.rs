//! The real `lifeboat controller`, run as a child process against the simulated clusters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::Child;

use crate::world::{LIFEBOAT_NS, STORM_NS};

/// How long the controller may take to write its address file and become ready.
const START_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(
        "the lifeboat binary was not found at {0} (build it next to the benchmark: \
         `cargo build --release -p lifeboat -p lifeboat-bench`)"
    )]
    Missing(String),
    #[error("cannot locate the benchmark's own executable: {0}")]
    CurrentExe(std::io::Error),
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the controller's log file {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the controller exited during startup ({status}); its log is {log}")]
    Exited { status: String, log: String },
    #[error("the controller did not become ready within {secs} s; its log is {log}")]
    NotReady { secs: u64, log: String },
}

/// Where the `lifeboat` binary is: next to this executable (both are built into the same
/// `target/<profile>/`), unless `explicit` names it.
pub fn locate_binary(explicit: Option<&Path>) -> Result<PathBuf, ControllerError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe().map_err(ControllerError::CurrentExe)?;
            let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
            // Test executables live in target/<profile>/deps.
            let dir = if dir.ends_with("deps") {
                dir.parent().map(Path::to_path_buf).unwrap_or(dir)
            } else {
                dir
            };
            dir.join("lifeboat")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(ControllerError::Missing(path.display().to_string()))
    }
}

/// A running controller process; killed when dropped.
pub struct Controller {
    child: Child,
    pub pid: u32,
    pub webhook: SocketAddr,
    pub health: SocketAddr,
    pub log: PathBuf,
}

/// How often [`Controller::settled_memory`] samples.
const SETTLE_SAMPLE: Duration = Duration::from_millis(500);
/// How long the resident size must hold still to count as settled.
const SETTLE_QUIET: Duration = Duration::from_secs(5);

/// Memory of a process as the kernel reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Memory {
    /// Resident set size now, MiB.
    pub rss_mib: f64,
    /// Peak resident set size ("high water mark"), MiB.
    pub hwm_mib: f64,
}

/// `VmRSS` and `VmHWM` from a `/proc/<pid>/status` text.
pub fn parse_proc_status(text: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: f64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    };
    Some(Memory {
        rss_mib: field("VmRSS:")?,
        hwm_mib: field("VmHWM:")?,
    })
}

impl Controller {
    /// Starts `binary controller` with `KUBECONFIG=kubeconfig`, logging into `dir`, and waits
    /// until it has bound its listeners and answers `/readyz` with 200.
    pub async fn start(
        binary: &Path,
        kubeconfig: &Path,
        dir: &Path,
        http: &reqwest::Client,
    ) -> Result<Controller, ControllerError> {
        let addr_file = dir.join("controller-addrs.json");
        let log = dir.join("controller.log");
        let log_file = std::fs::File::create(&log).map_err(|source| ControllerError::Log {
            path: log.display().to_string(),
            source,
        })?;
        let log_err = log_file
            .try_clone()
            .map_err(|source| ControllerError::Log {
                path: log.display().to_string(),
                source,
            })?;
        let child = crate::placement::controller_command(binary)
            .args([
                "controller",
                "--namespace",
                LIFEBOAT_NS,
                "--webhook-addr",
                "127.0.0.1:0",
                "--health-addr",
                "127.0.0.1:0",
                "--no-leader-election",
                "--tenant-namespace",
                STORM_NS,
                "--addr-file",
            ])
            .arg(&addr_file)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_file))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ControllerError::Spawn {
                path: binary.display().to_string(),
                source,
            })?;
        let pid = child.id().unwrap_or_default();
        let mut c = Controller {
            child,
            pid,
            webhook: SocketAddr::from(([127, 0, 0, 1], 0)),
            health: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = c.child.try_wait() {
                return Err(ControllerError::Exited {
                    status: status.to_string(),
                    log: c.log.display().to_string(),
                });
            }
            if c.webhook.port() == 0
                && let Ok(text) = std::fs::read_to_string(&addr_file)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                && let (Some(w), Some(h)) = (
                    v["webhook"].as_str().and_then(|s| s.parse().ok()),
                    v["health"].as_str().and_then(|s| s.parse().ok()),
                )
            {
                c.webhook = w;
                c.health = h;
            }
            if c.webhook.port() != 0 {
                let ready = http
                    .get(format!("http://{}/readyz", c.health))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    return Ok(c);
                }
            }
            if Instant::now() > deadline {
                return Err(ControllerError::NotReady {
                    secs: START_TIMEOUT.as_secs(),
                    log: c.log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The webhook URL (default namespace).
    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhook", self.webhook)
    }

    /// The process's memory now; `None` if it has exited or /proc is unreadable.
    pub fn memory(&self) -> Option<Memory> {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        parse_proc_status(&text)
    }

    /// Resident memory once the process has settled after a burst: sampled every
    /// [`SETTLE_SAMPLE`] until it has not fallen by more than 1 MiB over [`SETTLE_QUIET`],
    /// or for at most `limit`. Returns the last sample and how long settling took. (The
    /// allocator returns freed pages over time — glibc when a heap's top is free, musl per
    /// freed group — so the figure right after a burst includes its transient buffers.)
    pub async fn settled_memory(&self, limit: Duration) -> Option<(Memory, Duration)> {
        let start = tokio::time::Instant::now();
        let mut samples: Vec<(tokio::time::Instant, f64)> = Vec::new();
        loop {
            let now = tokio::time::Instant::now();
            let m = self.memory()?;
            samples.push((now, m.rss_mib));
            let window_start = samples.iter().find(|(t, _)| now - *t <= SETTLE_QUIET);
            let quiet_long_enough = now - start >= SETTLE_QUIET;
            let fell = window_start.map_or(0.0, |(_, rss)| rss - m.rss_mib);
            if (quiet_long_enough && fell <= 1.0) || now - start >= limit {
                return Some((m, now - start));
            }
            tokio::time::sleep(SETTLE_SAMPLE).await;
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process (SIGKILL via the child handle) and reaps it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak_from_proc_status() {
        let text =
            "Name:\tlifeboat\nVmPeak:\t  300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        let m = parse_proc_status(text).unwrap();
        assert_eq!(m.hwm_mib, 50.0);
        assert_eq!(m.rss_mib, 40.0);
        assert!(
            parse_proc_status("Name:\tx\n").is_none(),
            "no fields, no memory"
        );
    }

    #[test]
    fn a_missing_binary_is_named_with_the_build_command() {
        let err = locate_binary(Some(Path::new("/nonexistent/lifeboat"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/lifeboat"), "{msg}");
        assert!(
            msg.contains("cargo build --release -p lifeboat -p lifeboat-bench"),
            "{msg}"
        );
    }
}
