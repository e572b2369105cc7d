//! A real Kubernetes control plane (`testing/kube`: embedded etcd, kube-apiserver,
//! kube-controller-manager and a node agent in one process) as a child process.
//!
//! The same contract as the testkit's launcher: `lifeboat-kube --name N --dir D` is ready
//! once it has written `D/N.kubeconfig`, and audits every request to
//! `D/N.state/audit.log`. The benchmark has its own launcher because it reports errors
//! (exit code 2 with a message) where test support panics.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The command that builds the control plane.
pub const BUILD_COMMAND: &str = "bash scripts/build-kube.sh";
/// Overrides where the control plane binary is (as for the tests).
pub const BIN_ENV: &str = "LIFEBOAT_KUBE_BIN";
/// About 4 s on an idle machine; three start at once here, on a shared machine.
const START_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "the real control plane is not built: {0} is missing; build it with \
         `{BUILD_COMMAND}` (or pass --kube PATH, or set {BIN_ENV})"
    )]
    Missing(String),
    #[error("cannot locate the benchmark's own executable: {0}")]
    CurrentExe(std::io::Error),
    #[error("cannot create {path}: {source}")]
    Log {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {path}: {source}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("control plane {name} exited ({status}) before it was ready; its log ends:\n{tail}")]
    Exited {
        name: String,
        status: String,
        tail: String,
    },
    #[error("control plane {name} was not ready within {secs} s; its log ends:\n{tail}")]
    NotReady {
        name: String,
        secs: u64,
        tail: String,
    },
}

/// Where `lifeboat-kube` is: `explicit`, else `LIFEBOAT_KUBE_BIN`, else `target/kube/` of
/// the target directory this executable was built into (`target/release/..`).
pub fn locate_binary(explicit: Option<&Path>) -> Result<PathBuf, KubeError> {
    let path = match (explicit, std::env::var_os(BIN_ENV)) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let exe = std::env::current_exe().map_err(KubeError::CurrentExe)?;
            let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
            // Test executables live in target/<profile>/deps.
            if dir.ends_with("deps") {
                dir.pop();
            }
            dir.pop();
            dir.join("kube/lifeboat-kube")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(KubeError::Missing(path.display().to_string()))
    }
}

/// The Kubernetes release `binary` was built from: the `k8s.io/kubernetes` module version
/// in the module list Go embeds in every binary (what `go version -m` prints), whatever
/// the build stamped into the server's `/version` (scripts/build-kube.sh stamps the same).
pub fn kubernetes_release(binary: &Path) -> Option<String> {
    const DEP: &[u8] = b"\tk8s.io/kubernetes\t";
    let bytes = std::fs::read(binary).ok()?;
    let at = bytes.windows(DEP.len()).position(|w| w == DEP)? + DEP.len();
    let rest = bytes.get(at..)?;
    let end = rest.iter().position(|&b| b == b'\t' || b == b'\n')?;
    let version = std::str::from_utf8(&rest[..end]).ok()?;
    version.starts_with('v').then(|| version.to_string())
}

/// One running control plane; killed when dropped (its state lives in the benchmark's
/// working directory and goes with it).
pub struct KubeServer {
    child: Child,
    name: String,
    log: PathBuf,
    audit_log: PathBuf,
}

impl KubeServer {
    /// Starts control plane `name` with its state in `dir`; returns once it is ready, with
    /// its admin kubeconfig's path and text.
    pub async fn start(
        binary: &Path,
        name: &str,
        dir: &Path,
    ) -> Result<(KubeServer, PathBuf, String), KubeError> {
        let log = dir.join(format!("{name}.log"));
        let log_err = |source| KubeError::Log {
            path: log.display().to_string(),
            source,
        };
        let out = std::fs::File::create(&log).map_err(log_err)?;
        let err = out.try_clone().map_err(log_err)?;
        let child = Command::new(binary)
            .args(["--name", name, "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| KubeError::Spawn {
                path: binary.display().to_string(),
                source,
            })?;
        let mut server = KubeServer {
            child,
            name: name.to_string(),
            log,
            audit_log: dir.join(format!("{name}.state/audit.log")),
        };
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // Written (renamed into place) only once the cluster is ready.
            if let Ok(text) = std::fs::read_to_string(&kubeconfig) {
                return Ok((server, kubeconfig, text));
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(KubeError::Exited {
                    name: server.name.clone(),
                    status: status.to_string(),
                    tail: server.log_tail(),
                });
            }
            if Instant::now() > deadline {
                return Err(KubeError::NotReady {
                    name: server.name.clone(),
                    secs: START_TIMEOUT.as_secs(),
                    tail: server.log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The control plane's process id; `None` once it has been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The API server's audit log (one JSON `audit.k8s.io/v1` Event per line).
    pub fn audit_log(&self) -> &Path {
        &self.audit_log
    }

    /// The last lines of the control plane's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kubernetes_module_version_from_go_build_info() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let info = b"\x7fELF...path\tk8s.io/kube\nmod\tlifeboat/kube\t(devel)\t\n\
                     dep\tk8s.io/kubernetes\tv1.37.2\th1:abc=\n...";
        std::fs::write(&bin, info).unwrap();
        assert_eq!(kubernetes_release(&bin).as_deref(), Some("v1.37.2"));
        std::fs::write(&bin, b"no module list").unwrap();
        assert_eq!(kubernetes_release(&bin), None);
    }

    #[test]
    fn a_missing_binary_names_the_build_command() {
        let err = locate_binary(Some(Path::new("/nonexistent/lifeboat-kube"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/lifeboat-kube"), "{msg}");
        assert!(msg.contains("bash scripts/build-kube.sh"), "{msg}");
    }
}
