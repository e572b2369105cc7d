//! Test support shared by lifeboat's test suites.
//!
//! - [`TestCluster`]: a Kubernetes API server with lifeboat's CRDs, either the in-repo
//!   simulator (fast, the default) or a real control plane (`testing/kube`: etcd,
//!   kube-apiserver, kube-controller-manager and a node agent). One setting chooses:
//!   `LIFEBOAT_TEST_CLUSTER=sim|kube` ([`Backend::from_env`]).
//! - [`ControllerProcess`]: the `lifeboat controller` binary run against a cluster.
//! - [`scenarios`]: recovery scenarios that run unchanged on either backend, with the
//!   controller in-process or as a process.
//! - [`wait`]: waiting for an object's state, with a deadline and a useful failure message.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a failed setup is a failed test

mod backend;
mod cluster;
mod controller;
mod kube_process;
pub mod scenarios;
pub mod wait;

pub use backend::Backend;
pub use cluster::{LIFEBOAT_NS, TEST_NAMESPACES, TestCluster, config_from_kubeconfig};
pub use controller::ControllerProcess;
pub use wait::DEADLINE;

/// The repository's root directory (the seed examples are at `../shared/seed-examples`
/// from it).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Parses a YAML document into JSON.
pub fn yaml(text: &str) -> serde_json::Value {
    serde_yaml::from_str(text).unwrap()
}
