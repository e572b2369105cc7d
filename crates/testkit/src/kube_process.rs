//! A real control plane (`testing/kube`, built by `scripts/build-kube.sh`) as a child
//! process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a control plane may take to become ready (about 4 s when the machine is idle).
const START_DEADLINE: Duration = Duration::from_secs(180);

/// The control-plane binary: `LIFEBOAT_KUBE_BIN`, else `target/kube/lifeboat-kube` of
/// this workspace. Missing is a failure with the command that builds it, never a skip.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("LIFEBOAT_KUBE_BIN") {
        return PathBuf::from(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = workspace.join("target/kube/lifeboat-kube");
    assert!(
        path.exists(),
        "the real control plane is not built: {} is missing; run `bash scripts/build-kube.sh` \
         (or set LIFEBOAT_KUBE_BIN)",
        path.display()
    );
    path
}

/// One running control plane; killed (and its state removed with `dir`) on drop.
pub struct KubeProcess {
    child: Child,
    log: PathBuf,
    audit_log: PathBuf,
}

impl KubeProcess {
    /// Starts cluster `name` with its state and kubeconfig in `dir`; returns once the
    /// cluster is ready, with the admin kubeconfig's text.
    pub async fn start(name: &str, dir: &Path) -> (KubeProcess, String) {
        let log = dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary())
            .args(["--name", name, "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary().display()));
        let audit_log = dir.join(format!("{name}.state/audit.log"));
        let mut process = KubeProcess {
            child,
            log,
            audit_log,
        };
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(text) = std::fs::read_to_string(&kubeconfig) {
                return (process, text);
            }
            if let Some(status) = process.child.try_wait().unwrap() {
                panic!(
                    "control plane {name} exited ({status}) before it was ready:\n{}",
                    process.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "control plane {name} not ready within {START_DEADLINE:?}:\n{}",
                process.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Requests the API server completed, as its audit log records them (one JSON
    /// `audit.k8s.io/v1` Event per line, metadata level).
    pub fn audit_events(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.audit_log)
            .unwrap_or_else(|e| panic!("{}: {e}", self.audit_log.display()));
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The audit events of the requests on `resource` (no subresource) the server
    /// completed, dry runs excluded, in the order received.
    pub fn completed_requests(&self, resource: &str) -> Vec<serde_json::Value> {
        self.audit_events()
            .into_iter()
            .filter(|e| {
                e["stage"] == "ResponseComplete"
                    && e["objectRef"]["resource"] == resource
                    && e["objectRef"]["subresource"].is_null()
                    && !e["requestURI"].as_str().unwrap_or("").contains("dryRun")
            })
            .collect()
    }

    /// The last lines of the control plane's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for KubeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
