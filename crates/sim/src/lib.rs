//! An in-process Kubernetes API simulator: several "clusters" side by side in one
//! process, each an HTTP server on 127.0.0.1 that `kube::Client` and `kubectl` talk to.
//!
//! It serves discovery, OpenAPI, CRUD with Kubernetes' error bodies, list + watch with
//! resourceVersions, bookmarks and 410 Expired, patches (JSON, merge, strategic merge,
//! server-side apply), the status, scale and pod log subresources, CRDs with structural
//! schemas (pruning, defaulting, validation), server-side tables for `kubectl get`, a Job
//! controller, ServiceAccount tokens (TokenRequest), impersonation, RBAC (Roles,
//! ClusterRoles, bindings, aggregation) and a small allow-list table, audit counters and
//! fault injection.
//!
//! The kubeconfig's credentials (and requests without any) are cluster-admin; a token from
//! `kubectl create token` acts as its ServiceAccount.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let cluster = lifeboat_sim::SimCluster::start("east").await?;
//! cluster.write_kubeconfig(std::path::Path::new("east.kubeconfig"))?;
//! cluster.faults().set_error_rate(Some("patch"), 0.1); // 10 % of PATCHes answer 500/503
//! cluster.authz().allow("system:serviceaccount:ops:lifeboat", &["get", "patch"], "", "pods", Some("default"));
//! println!("{}", cluster.stats()); // requests by verb, resource and code
//! # Ok(()) }
//! ```
//!
//! Jobs run one pod at a time; per Job (or pod template) the annotations
//! `sim.lifeboat.dev/outcome: Complete|Fail` and `sim.lifeboat.dev/duration: 300ms` decide
//! each pod's fate (defaults: Complete, 100ms); `backoffLimit` and `activeDeadlineSeconds`
//! are honoured. Standalone pods run at once; deployments report themselves rolled out.
//!
//! A pod's log (`GET …/pods/NAME/log`, RBAC resource `pods/log`) is the text of its
//! annotation `sim.lifeboat.dev/log`, the same for each container, or empty without it; a
//! Job's pods carry their pod template's annotations, so the annotation goes on
//! `spec.template.metadata`. The `container` parameter is checked as kube-apiserver checks
//! it (400 for an unknown one, or when the pod has several and none is named); the other
//! parameters (`follow`, `tailLines`, …) are ignored.

pub mod api;
pub mod authn;
pub mod authz;
pub mod builtin_schema;
pub mod cluster;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod jobs;
mod kinds;
pub mod object;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod selector;
pub mod server;
pub mod stats;
pub mod store;
pub mod structural;
pub mod table;
pub mod tokens;
pub mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use authz::Authz;
pub use error::{Reason, SimError};
pub use faults::Faults;
pub use stats::RequestStats;

use api::{ApiRequest, State, split_api_version};
use server::Cluster;

/// One simulated cluster. Cheap to clone.
#[derive(Clone)]
pub struct SimCluster {
    inner: Arc<Cluster>,
}

impl std::fmt::Debug for SimCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCluster")
            .field("name", &self.inner.name)
            .field("addr", &self.inner.addr)
            .finish()
    }
}

impl SimCluster {
    /// Start a cluster on `127.0.0.1` and a free port.
    pub async fn start(name: &str) -> std::io::Result<SimCluster> {
        let listener = server::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::new()));
        let cluster = Arc::new(Cluster {
            name: name.to_string(),
            addr,
            state: state.clone(),
            faults: Faults::default(),
            authz: Authz::default(),
            tokens: tokens::Tokens::default(),
            stats: Mutex::default(),
            shutdown: CancellationToken::new(),
            open_watches: Arc::default(),
        });
        *cluster
            .faults
            .on_expire
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Box::new(move || {
            state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .store
                .compact();
        }));
        jobs::spawn_controller(cluster.clone());
        tokio::spawn(server::supervise(cluster.clone(), listener));
        Ok(SimCluster { inner: cluster })
    }

    /// The cluster's name (also the kubeconfig's cluster, context and user name).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// A kubeconfig with one cluster, context and user named after the cluster; the
    /// context's namespace is `default`.
    pub fn kubeconfig_yaml(&self) -> String {
        let n = yaml_quote(&self.inner.name);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {n}\n  cluster:\n    server: {url}\ncontexts:\n- name: {n}\n  context:\n    cluster: {n}\n    user: {n}\n    namespace: default\ncurrent-context: {n}\nusers:\n- name: {n}\n  user:\n    token: {token}\npreferences: {{}}\n",
            url = self.url(),
            token = authn::ADMIN_TOKEN,
        )
    }

    /// Write [`SimCluster::kubeconfig_yaml`] to a file.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Fault knobs.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The allow-list table (RBAC objects in the store allow requests too).
    pub fn authz(&self) -> &Authz {
        &self.inner.authz
    }

    /// Snapshot of request counters.
    pub fn stats(&self) -> RequestStats {
        RequestStats {
            counts: self
                .inner
                .stats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Watch streams currently open (a stream ends at its timeout, when the client goes
    /// away, or when dropped by a fault).
    pub fn open_watches(&self) -> usize {
        self.inner
            .open_watches
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Zero the request counters.
    pub fn reset_stats(&self) {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Stop serving: the port closes, open connections and watches end, Jobs stop.
    pub async fn shutdown(self) {
        self.inner.shutdown.cancel();
        tokio::task::yield_now().await;
    }

    /// One object straight from the store (`resource` is the plural, e.g. `configmaps`;
    /// a kind or short name works too).
    pub fn get_object(
        &self,
        api_version: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let (group, version) = split_api_version(api_version);
        let st = self.lock();
        let res = st
            .resource(group, version, resource)
            .or_else(|| st.resource(group, version, &resource.to_ascii_lowercase()))?;
        let mut obj = st
            .store
            .get(&res.storage_key(), namespace.unwrap_or_default(), name)?
            .clone();
        obj["apiVersion"] = Value::String(res.api_version());
        Some(obj)
    }

    /// Create the object, or replace it if it exists (like `kubectl apply`), with the same
    /// validation as the API.
    pub fn apply_object(&self, obj: Value) -> Result<Value, SimError> {
        let av = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        let mut st = self.lock();
        let res = st.resource_for_kind(&av, &kind).ok_or_else(|| {
            SimError::new(
                Reason::NotFound,
                format!("no matches for kind \"{kind}\" in version \"{av}\""),
            )
        })?;
        let namespace = if res.namespaced {
            obj["metadata"]["namespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let exists = !name.is_empty()
            && st
                .store
                .get(&res.storage_key(), &namespace, &name)
                .is_some();
        let mut obj = obj;
        if exists {
            let rv = st
                .store
                .get(&res.storage_key(), &namespace, &name)
                .map(|o| o["metadata"]["resourceVersion"].clone())
                .unwrap_or(Value::Null);
            obj["metadata"]["resourceVersion"] = rv;
        }
        let req = ApiRequest {
            res,
            namespace,
            name: if exists { name } else { String::new() },
            subresource: None,
            query: Default::default(),
            content_type: "application/json".into(),
            body: bytes::Bytes::from(obj.to_string()),
        };
        let (_, out) = if exists {
            st.update(&req)?
        } else {
            st.create(&req)?
        };
        Ok(Arc::unwrap_or_clone(out))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn yaml_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Start several clusters.
pub async fn start_clusters(names: &[&str]) -> std::io::Result<Vec<SimCluster>> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        out.push(SimCluster::start(n).await?);
    }
    Ok(out)
}

/// `lifeboat sim [NAMES…] [--dir D]`: start clusters, write `D/<name>.kubeconfig`, print
/// each path, serve until Ctrl-C.
pub async fn serve_until_interrupted(names: &[String], dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut clusters = Vec::new();
    for n in names {
        let c = SimCluster::start(n).await?;
        let path = dir.join(format!("{n}.kubeconfig"));
        c.write_kubeconfig(&path)?;
        println!("{}", path.display());
        clusters.push(c);
    }
    tokio::signal::ctrl_c().await?;
    for c in clusters {
        c.shutdown().await;
    }
    Ok(())
}
