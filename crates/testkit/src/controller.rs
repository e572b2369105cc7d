//! The `lifeboat controller` binary run as a process against a cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::LIFEBOAT_NS;
use crate::wait::DEADLINE;

/// A running `lifeboat controller`: its log (stdout and stderr) and the addresses it bound
/// (read from its `--addr-file`). Killed on drop.
pub struct ControllerProcess {
    child: tokio::process::Child,
    /// The log file.
    pub log: PathBuf,
    /// `--identity` (its name in the leader Lease).
    pub identity: String,
    pub webhook: Option<SocketAddr>,
    pub health: SocketAddr,
}

impl ControllerProcess {
    /// Starts `bin controller` with `kubeconfig`, lifeboat's namespace, the health server
    /// on a loopback port chosen by the OS, `--identity identity`, and `extra` flags (e.g.
    /// `--no-webhook`, `--no-leader-election`, `--webhook-addr 127.0.0.1:0`). Its log and
    /// address file go to `dir`. Returns once it has written its bound addresses (before
    /// leader election, so a standby starts too).
    pub async fn start(
        bin: &Path,
        kubeconfig: &Path,
        dir: &Path,
        identity: &str,
        extra: &[&str],
    ) -> ControllerProcess {
        let addr_file = dir.join(format!("{identity}.addr.json"));
        let log = dir.join(format!("{identity}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = tokio::process::Command::new(bin)
            .args([
                "controller",
                "--namespace",
                LIFEBOAT_NS,
                "--health-addr",
                "127.0.0.1:0",
                "--identity",
                identity,
                "--addr-file",
            ])
            .arg(&addr_file)
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("LIFEBOAT_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let addrs: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file)
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && v.get("health").is_some()
            {
                break v;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "{identity} exited ({status}) before listening; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{identity} did not write {} in time",
                addr_file.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let addr = |key: &str| addrs[key].as_str().map(|a| a.parse().unwrap());
        ControllerProcess {
            webhook: addr("webhook"),
            health: addr("health").unwrap(),
            identity: identity.to_string(),
            child,
            log,
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    /// SIGTERM, and wait for a clean exit.
    pub async fn terminate(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("controller did not stop after SIGTERM")
            .unwrap();
        assert!(
            status.success(),
            "controller exited with {status}; log:\n{}",
            self.log_text()
        );
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log, for failure messages of shared scenarios.
    pub fn diag(&self) -> String {
        format!("{} log:\n{}", self.identity, self.log_text())
    }

    /// Fails if the process has panicked (its log holds stdout and stderr).
    pub fn assert_no_panic(&self) {
        let log = self.log_text();
        assert!(
            !log.contains("panicked"),
            "{} panicked; log:\n{log}",
            self.identity
        );
    }

    /// GET `path` on the health server: status and body.
    pub async fn health_get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.health))
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", self.identity));
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.health_get("/metrics").await;
        assert_eq!(status, 200, "/metrics of {}: {body}", self.identity);
        body
    }

    /// URL of `path` on the webhook receiver.
    pub fn webhook_url(&self, path: &str) -> String {
        let addr = self.webhook.expect("the controller serves no webhook");
        format!("http://{addr}{path}")
    }
}
