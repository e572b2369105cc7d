//! The world of the benchmark: a management cluster (lifeboat's CRDs, its namespace, the
//! cluster Secrets), a `db` cluster with two PerconaPGClusters and a `proxy` cluster with
//! HAProxy's ConfigMap — the seed-002 failover scenario — on either backend: simulated
//! clusters in this process, or real control planes (`testing/kube`) as child processes.
//!
//! What differs between the backends stays here: how a cluster starts, how the harness
//! resets and checks objects (straight into the simulator's store, or through the API as
//! the admin), who the counted clients authenticate as, and where request counts come from
//! (the simulator's counters, or the real API server's audit log).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersion;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use lifeboat_sim::SimCluster;
use serde_json::{Value, json};

use crate::audit::AuditLog;
use crate::identity::{self, Actor};
use crate::kube_server::{KubeError, KubeServer};

pub use crate::identity::LIFEBOAT_NS;
/// Namespace of the alert-storm plans, alerts and runs (mgmt).
pub const STORM_NS: &str = "storm";
/// Namespace of the PerconaPGClusters (db).
pub const DB_NS: &str = "ferretdb";
/// Namespace of HAProxy (proxy).
pub const PROXY_NS: &str = "haproxy";
/// ConfigMap holding haproxy.cfg (proxy).
pub const HAPROXY_CM: &str = "haproxy-config";
/// ConfigMap the storm plans read (mgmt, storm namespace).
pub const STORM_TARGET: &str = "storm-target";

/// Errors building the world.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    #[error("cannot start simulated cluster {name}: {source}")]
    Start {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build a client for cluster {name}: {message}")]
    Client { name: String, message: String },
    #[error("{doing}: {source}")]
    Api {
        doing: String,
        #[source]
        source: kube::Error,
    },
    #[error("CRD {0} was not established within 10 s")]
    CrdTimeout(String),
    #[error("{doing}: {message}")]
    Sim { doing: String, message: String },
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{doing}: {message}")]
    Setup { doing: String, message: String },
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error("cannot read the audit log of {cluster}: {source}")]
    Audit {
        cluster: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

fn api_err(doing: impl Into<String>) -> impl FnOnce(kube::Error) -> WorldError {
    let doing = doing.into();
    move |source| WorldError::Api { doing, source }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T, WorldError> {
    serde_json::from_value(v).map_err(|source| WorldError::Encode {
        what: what.to_string(),
        source,
    })
}

/// Which API servers the world runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// `lifeboat-sim`, in this process.
    Sim,
    /// Real control planes: `binary` is `lifeboat-kube` (see `kube_server`).
    Kube { binary: PathBuf },
}

/// A real control plane and the requests it has audited.
struct Real {
    process: KubeServer,
    audit: Mutex<AuditLog>,
    /// Requests received before this are not counted (see [`Cluster::reset_requests`]).
    since: Mutex<jiff::Timestamp>,
}

impl Real {
    /// `f` over what the server has audited up to now, and the start of the counting window.
    fn read<T>(
        &self,
        cluster: &str,
        f: impl FnOnce(&AuditLog, jiff::Timestamp) -> T,
    ) -> Result<T, WorldError> {
        let mut audit = self.audit.lock().unwrap_or_else(PoisonError::into_inner);
        audit.refresh().map_err(|source| WorldError::Audit {
            cluster: cluster.to_string(),
            source,
        })?;
        let since = *self.since.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(f(&audit, since))
    }
}

#[derive(Clone)]
enum Server {
    Sim(SimCluster),
    Kube(Arc<Real>),
}

/// A cluster, an admin client for it (the harness's) and its kubeconfig on disk.
#[derive(Clone)]
pub struct Cluster {
    name: String,
    server: Server,
    pub client: Client,
    /// The admin kubeconfig (the harness's).
    pub kubeconfig: PathBuf,
    kubeconfig_yaml: String,
    /// Kubeconfigs of the counted clients, where they have their own user (real servers).
    actors: BTreeMap<Actor, (PathBuf, String)>,
}

/// A client for the kubeconfig `yaml` of cluster `name`.
pub async fn client_from(name: &str, yaml: &str) -> Result<Client, WorldError> {
    let client_err = |message: String| WorldError::Client {
        name: name.to_string(),
        message,
    };
    let kc = Kubeconfig::from_yaml(yaml).map_err(|e| client_err(e.to_string()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| client_err(e.to_string()))?;
    Client::try_from(config).map_err(|e| client_err(e.to_string()))
}

impl Cluster {
    /// Starts a simulated cluster in this process.
    pub async fn start_sim(name: &str, dir: &Path) -> Result<Cluster, WorldError> {
        let sim = SimCluster::start(name)
            .await
            .map_err(|source| WorldError::Start {
                name: name.to_string(),
                source,
            })?;
        let kubeconfig_yaml = sim.kubeconfig_yaml();
        let client = client_from(name, &kubeconfig_yaml).await?;
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        sim.write_kubeconfig(&kubeconfig)
            .map_err(|source| WorldError::Io {
                path: kubeconfig.display().to_string(),
                source,
            })?;
        Ok(Cluster {
            name: name.to_string(),
            server: Server::Sim(sim),
            client,
            kubeconfig,
            kubeconfig_yaml,
            actors: BTreeMap::new(),
        })
    }

    /// Starts a real control plane (`binary`) with its state in `dir`, and gives each
    /// counted client ([`Actor`]) a user of its own on it.
    pub async fn start_real(binary: &Path, name: &str, dir: &Path) -> Result<Cluster, WorldError> {
        let (process, kubeconfig, kubeconfig_yaml) = KubeServer::start(binary, name, dir).await?;
        let client = client_from(name, &kubeconfig_yaml).await?;
        let audit = Mutex::new(AuditLog::new(process.audit_log()));
        let mut cluster = Cluster {
            name: name.to_string(),
            server: Server::Kube(Arc::new(Real {
                process,
                audit,
                since: Mutex::new(jiff::Timestamp::now()),
            })),
            client,
            kubeconfig,
            kubeconfig_yaml,
            actors: BTreeMap::new(),
        };
        cluster.namespace(LIFEBOAT_NS).await?;
        for actor in Actor::ALL {
            let yaml = identity::kubeconfig(&cluster.client, name, &cluster.kubeconfig_yaml, actor)
                .await?;
            let path = dir.join(format!("{name}-{}.kubeconfig", actor.service_account()));
            std::fs::write(&path, &yaml).map_err(|source| WorldError::Io {
                path: path.display().to_string(),
                source,
            })?;
            cluster.actors.insert(actor, (path, yaml));
        }
        Ok(cluster)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The simulator, for what only it can do (bulk loads and reads of its store).
    pub fn sim(&self) -> Option<&SimCluster> {
        match &self.server {
            Server::Sim(sim) => Some(sim),
            Server::Kube(_) => None,
        }
    }

    /// The kubeconfig `actor` uses: its own user on a real server, the admin's on the
    /// simulator.
    pub fn kubeconfig_of(&self, actor: Actor) -> &Path {
        self.actors
            .get(&actor)
            .map_or(self.kubeconfig.as_path(), |(path, _)| path.as_path())
    }

    /// The admin kubeconfig (the harness's, [`Cluster::client`]'s) as text.
    pub fn admin_kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    /// [`Cluster::kubeconfig_of`] as text.
    pub fn kubeconfig_yaml_of(&self, actor: Actor) -> &str {
        self.actors
            .get(&actor)
            .map_or(self.kubeconfig_yaml.as_str(), |(_, yaml)| yaml.as_str())
    }

    /// Creates a namespace (existing is fine).
    pub async fn namespace(&self, name: &str) -> Result<(), WorldError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns: Namespace = decode("namespace", json!({"metadata": {"name": name}}))?;
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(api_err(format!(
                "create namespace {name} on {}",
                self.name()
            ))(e)),
        }
    }

    /// Creates CRDs and waits until each is established.
    pub async fn install_crds(
        &self,
        crds: Vec<CustomResourceDefinition>,
    ) -> Result<(), WorldError> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for crd in crds {
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.create(&PostParams::default(), &crd)
                .await
                .map_err(api_err(format!("create CRD {name} on {}", self.name())))?;
            let established = await_condition(api.clone(), &name, conditions::is_crd_established());
            tokio::time::timeout(Duration::from_secs(10), established)
                .await
                .map_err(|_| WorldError::CrdTimeout(name.clone()))?
                .map_err(|e| WorldError::Sim {
                    doing: format!("watch CRD {name}"),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Creates or replaces `obj` as the harness: straight into the simulator's store (no
    /// API request is counted), or on a real server by a forced server-side apply as the
    /// admin (not a counted user). Used to reset state between repetitions and to load
    /// bulk data.
    pub async fn put(&self, obj: Value) -> Result<(), WorldError> {
        let what = format!(
            "{} {}/{}",
            obj["kind"].as_str().unwrap_or("object"),
            obj["metadata"]["namespace"].as_str().unwrap_or(""),
            obj["metadata"]["name"].as_str().unwrap_or("")
        );
        let doing = format!("store {what} on {}", self.name());
        if let Server::Sim(sim) = &self.server {
            return sim
                .apply_object(obj)
                .map(|_| ())
                .map_err(|e| WorldError::Sim {
                    doing,
                    message: e.to_string(),
                });
        }
        let gvk = group_version(obj["apiVersion"].as_str().unwrap_or(""))?
            .with_kind(obj["kind"].as_str().unwrap_or(""));
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            obj["metadata"]["namespace"].as_str().unwrap_or("default"),
            &ApiResource::from_gvk(&gvk),
        );
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        api.patch(
            &name,
            &PatchParams::apply("lifeboat-bench").force(),
            &Patch::Apply(&obj),
        )
        .await
        .map_err(api_err(doing))?;
        Ok(())
    }

    /// The object as stored (`None` if absent): read from the simulator's store (not
    /// counted), or from a real server as the admin.
    pub async fn get_object(
        &self,
        api_version: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, WorldError> {
        if let Server::Sim(sim) = &self.server {
            return Ok(sim.get_object(api_version, plural, Some(namespace), name));
        }
        let ar =
            ApiResource::from_gvk_with_plural(&group_version(api_version)?.with_kind(""), plural);
        let doing = format!("get {plural} {namespace}/{name} on {}", self.name());
        let obj = Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, &ar)
            .get_opt(name)
            .await
            .map_err(api_err(doing.clone()))?;
        obj.map(|o| {
            serde_json::to_value(o).map_err(|source| WorldError::Encode {
                what: doing,
                source,
            })
        })
        .transpose()
    }

    /// Requests by (verb, resource) since [`Cluster::reset_requests`], watches left out.
    /// The simulator counts every client's requests (the harness makes none it counts);
    /// a real server's audit log is filtered to `actor`'s user.
    pub fn requests(&self, actor: Actor) -> Result<BTreeMap<(String, String), u64>, WorldError> {
        match &self.server {
            Server::Sim(sim) => {
                let mut out = BTreeMap::new();
                for ((verb, resource, _code), n) in sim.stats().counts {
                    if verb != "watch" {
                        *out.entry((verb, resource)).or_insert(0) += n;
                    }
                }
                Ok(out)
            }
            Server::Kube(real) => real.read(&self.name, |log, since| {
                log.counts(&actor.username(), since)
            }),
        }
    }

    /// The median time a real server spent on `actor`'s requests [`Cluster::requests`]
    /// counts, by (verb, resource), from its audit log; empty on the simulator.
    pub fn server_times(
        &self,
        actor: Actor,
    ) -> Result<BTreeMap<(String, String), Duration>, WorldError> {
        match &self.server {
            Server::Sim(_) => Ok(BTreeMap::new()),
            Server::Kube(real) => real.read(&self.name, |log, since| {
                log.server_times(&actor.username(), since)
            }),
        }
    }

    /// Starts counting requests afresh: zeroes the simulator's counters; on a real server,
    /// counts only requests received from now on.
    pub fn reset_requests(&self) {
        match &self.server {
            Server::Sim(sim) => sim.reset_stats(),
            Server::Kube(real) => {
                *real.since.lock().unwrap_or_else(PoisonError::into_inner) = jiff::Timestamp::now();
            }
        }
    }

    /// The process serving this cluster: a real control plane's; `None` for a simulated
    /// cluster, which is served from this process.
    pub fn server_pid(&self) -> Option<u32> {
        match &self.server {
            Server::Sim(_) => None,
            Server::Kube(real) => real.process.pid(),
        }
    }

    /// The control plane's log tail (real servers), for error messages.
    pub fn server_log(&self) -> Option<String> {
        match &self.server {
            Server::Sim(_) => None,
            Server::Kube(real) => Some(real.process.log_tail()),
        }
    }
}

fn group_version(api_version: &str) -> Result<GroupVersion, WorldError> {
    api_version.parse().map_err(|e| WorldError::Setup {
        doing: format!("parse apiVersion {api_version:?}"),
        message: format!("{e}"),
    })
}

/// Address the Percona operator publishes for a PostgreSQL cluster.
pub fn pg_host(cluster: &str) -> String {
    format!("{cluster}-pgbouncer.{DB_NS}.svc")
}

/// The HAProxy configuration sending database traffic to `host`.
pub fn haproxy_cfg(host: &str) -> String {
    format!(
        "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30m\n  \
         timeout server 30m\nfrontend postgres\n  bind *:5432\n  default_backend postgres-primary\n\
         backend postgres-primary\n  server primary {host}:5432 check\n"
    )
}

/// A trimmed-down PerconaPGCluster CRD keeping what the failover touches (examples/crds/).
const PG_CRD: &str = include_str!("../../../examples/crds/perconapgclusters.pgv2.percona.com.yaml");

/// [`PG_CRD`] as JSON (a YAML error surfaces as null, which `decode` then reports).
fn pg_crd() -> Value {
    serde_yaml::from_str(PG_CRD).unwrap_or(Value::Null)
}

/// The three clusters of the scenario.
pub struct World {
    pub mgmt: Cluster,
    pub db: Cluster,
    pub proxy: Cluster,
}

impl World {
    /// Starts the clusters and prepares them: CRDs, namespaces, cluster Secrets, the
    /// PostgreSQL clusters (cluster1 primary, cluster2 standby, both with their address
    /// published) and HAProxy pointing at cluster1.
    pub async fn start(dir: &Path, backend: &Backend) -> Result<World, WorldError> {
        let (mgmt, db, proxy) = match backend {
            Backend::Sim => (
                Cluster::start_sim("mgmt", dir).await?,
                Cluster::start_sim("db", dir).await?,
                Cluster::start_sim("proxy", dir).await?,
            ),
            // About 4 s each when alone: start them together.
            Backend::Kube { binary } => tokio::try_join!(
                Cluster::start_real(binary, "mgmt", dir),
                Cluster::start_real(binary, "db", dir),
                Cluster::start_real(binary, "proxy", dir),
            )?,
        };
        mgmt.install_crds(lifeboat_api::crds::all()).await?;
        mgmt.namespace(LIFEBOAT_NS).await?;
        mgmt.namespace(STORM_NS).await?;
        for c in [&db, &proxy] {
            register(&mgmt, c).await?;
        }
        db.install_crds(vec![decode("the PerconaPGCluster CRD", pg_crd())?])
            .await?;
        db.namespace(DB_NS).await?;
        proxy.namespace(PROXY_NS).await?;
        let world = World { mgmt, db, proxy };
        world.reset().await?;
        // The status subresource is not written by a replace: publish the addresses once.
        for name in ["cluster1", "cluster2"] {
            let api: Api<kube::api::DynamicObject> =
                Api::namespaced_with(world.db.client.clone(), DB_NS, &pg_resource());
            let status = json!({"status": {"state": "ready", "host": pg_host(name)}});
            api.patch_status(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&status),
            )
            .await
            .map_err(api_err(format!(
                "set the status of PerconaPGCluster {name}"
            )))?;
        }
        Ok(world)
    }

    /// Puts the failover's objects back to before the failover: cluster1 primary, cluster2
    /// standby, HAProxy pointing at cluster1 (as the harness: see [`Cluster::put`]).
    pub async fn reset(&self) -> Result<(), WorldError> {
        for (name, standby) in [("cluster1", false), ("cluster2", true)] {
            self.db
                .put(json!({
                    "apiVersion": "pgv2.percona.com/v2",
                    "kind": "PerconaPGCluster",
                    "metadata": {"name": name, "namespace": DB_NS},
                    "spec": {"postgresVersion": 16, "standby": {"enabled": standby}}
                }))
                .await?;
        }
        self.proxy
            .put(json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": HAPROXY_CM, "namespace": PROXY_NS},
                "data": {"haproxy.cfg": haproxy_cfg(&pg_host("cluster1"))}
            }))
            .await
    }

    /// Whether the failover's outcome is in place: cluster1 standby, cluster2 primary and
    /// HAProxy pointing at cluster2. `Err` says what is not.
    pub async fn check_failed_over(&self) -> Result<(), String> {
        for (name, want) in [("cluster1", true), ("cluster2", false)] {
            let obj = self
                .db
                .get_object("pgv2.percona.com/v2", "perconapgclusters", DB_NS, name)
                .await
                .map_err(|e| e.to_string())?;
            let standby = obj.and_then(|o| o["spec"]["standby"]["enabled"].as_bool());
            if standby != Some(want) {
                let role = if want { "standby" } else { "primary" };
                return Err(format!("{name} is not {role}"));
            }
        }
        let cfg = self
            .proxy
            .get_object("v1", "configmaps", PROXY_NS, HAPROXY_CM)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|o| o["data"]["haproxy.cfg"].as_str().map(str::to_string))
            .unwrap_or_default();
        let want = format!("server primary {}:5432", pg_host("cluster2"));
        if !cfg.contains(&want) {
            return Err(format!("haproxy.cfg does not contain {want:?}: {cfg:?}"));
        }
        Ok(())
    }

    /// Starts counting requests afresh on every cluster.
    pub fn reset_stats(&self) {
        for c in self.clusters() {
            c.reset_requests();
        }
    }

    pub fn clusters(&self) -> [&Cluster; 3] {
        [&self.mgmt, &self.db, &self.proxy]
    }
}

/// The PerconaPGCluster resource.
pub fn pg_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "pgv2.percona.com".into(),
        version: "v2".into(),
        api_version: "pgv2.percona.com/v2".into(),
        kind: "PerconaPGCluster".into(),
        plural: "perconapgclusters".into(),
    }
}

/// Registers `cluster` with lifeboat: a Secret labelled as a cluster Secret in mgmt's
/// lifeboat namespace, with the cluster's name and lifeboat's kubeconfig for it.
async fn register(mgmt: &Cluster, cluster: &Cluster) -> Result<(), WorldError> {
    let name = format!("cluster-{}", cluster.name());
    let secret = lifeboat_api::cluster_secret(
        &name,
        LIFEBOAT_NS,
        cluster.name(),
        cluster.kubeconfig_yaml_of(Actor::Lifeboat),
    );
    Api::<Secret>::namespaced(mgmt.client.clone(), LIFEBOAT_NS)
        .create(&PostParams::default(), &secret)
        .await
        .map_err(api_err(format!("create Secret {LIFEBOAT_NS}/{name}")))?;
    Ok(())
}

/// Creates the ConfigMap the storm plans read.
pub async fn storm_target(mgmt: &Cluster) -> Result<(), WorldError> {
    let cm: ConfigMap = decode(
        "the storm ConfigMap",
        json!({"metadata": {"name": STORM_TARGET, "namespace": STORM_NS}, "data": {"value": "ok"}}),
    )?;
    match Api::<ConfigMap>::namespaced(mgmt.client.clone(), STORM_NS)
        .create(&PostParams::default(), &cm)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(api_err("create the storm ConfigMap")(e)),
    }
}
