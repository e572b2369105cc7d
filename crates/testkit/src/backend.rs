use std::fmt;

/// Which API server the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The in-repo simulator (`lifeboat-sim`), in the test process.
    Sim,
    /// A real control plane built from Kubernetes' Go modules (`testing/kube`), one
    /// process per cluster.
    Kube,
}

impl Backend {
    /// The environment variable that chooses the backend.
    pub const ENV: &'static str = "LIFEBOAT_TEST_CLUSTER";

    /// `LIFEBOAT_TEST_CLUSTER`: `sim` (or unset) or `kube`. Any other value fails the test
    /// rather than silently testing something else.
    pub fn from_env() -> Backend {
        match std::env::var(Self::ENV).as_deref() {
            Err(_) | Ok("") | Ok("sim") => Backend::Sim,
            Ok("kube") => Backend::Kube,
            Ok(other) => panic!("{}={other:?}: expected \"sim\" or \"kube\"", Self::ENV),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sim => "sim",
            Backend::Kube => "kube",
        })
    }
}
