//! The simulated world of the benchmark: a management cluster (lifeboat's CRDs, its
//! namespace, the cluster Secrets), a `db` cluster with two PerconaPGClusters and a `proxy`
//! cluster with HAProxy's ConfigMap — the seed-002 failover scenario.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use lifeboat_sim::SimCluster;
use serde_json::{Value, json};

/// Namespace lifeboat runs in (mgmt); the failover plan and its alerts live here.
pub const LIFEBOAT_NS: &str = "lifeboat-system";
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

/// A simulated cluster, a client for it and its kubeconfig on disk.
#[derive(Clone)]
pub struct Cluster {
    pub sim: SimCluster,
    pub client: Client,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    pub async fn start(name: &str, dir: &Path) -> Result<Cluster, WorldError> {
        let sim = SimCluster::start(name)
            .await
            .map_err(|source| WorldError::Start {
                name: name.to_string(),
                source,
            })?;
        let client_err = |message: String| WorldError::Client {
            name: name.to_string(),
            message,
        };
        let kc =
            Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).map_err(|e| client_err(e.to_string()))?;
        let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| client_err(e.to_string()))?;
        let client = Client::try_from(config).map_err(|e| client_err(e.to_string()))?;
        let kubeconfig = dir.join(format!("{name}.kubeconfig"));
        sim.write_kubeconfig(&kubeconfig)
            .map_err(|source| WorldError::Io {
                path: kubeconfig.display().to_string(),
                source,
            })?;
        Ok(Cluster {
            sim,
            client,
            kubeconfig,
        })
    }

    pub fn name(&self) -> &str {
        self.sim.name()
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

    /// Writes an object straight into the simulator's store (create or replace; no API
    /// request is counted). Used to reset state between repetitions and to load bulk data.
    pub fn put(&self, obj: Value) -> Result<(), WorldError> {
        let what = format!(
            "{} {}/{}",
            obj["kind"].as_str().unwrap_or("object"),
            obj["metadata"]["namespace"].as_str().unwrap_or(""),
            obj["metadata"]["name"].as_str().unwrap_or("")
        );
        self.sim
            .apply_object(obj)
            .map(|_| ())
            .map_err(|e| WorldError::Sim {
                doing: format!("store {what} on {}", self.name()),
                message: e.to_string(),
            })
    }
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
    pub async fn start(dir: &Path) -> Result<World, WorldError> {
        let mgmt = Cluster::start("mgmt", dir).await?;
        let db = Cluster::start("db", dir).await?;
        let proxy = Cluster::start("proxy", dir).await?;
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
        world.reset()?;
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
    /// standby, HAProxy pointing at cluster1. Written straight into the stores (no API
    /// request is counted).
    pub fn reset(&self) -> Result<(), WorldError> {
        for (name, standby) in [("cluster1", false), ("cluster2", true)] {
            self.db.put(json!({
                "apiVersion": "pgv2.percona.com/v2",
                "kind": "PerconaPGCluster",
                "metadata": {"name": name, "namespace": DB_NS},
                "spec": {"postgresVersion": 16, "standby": {"enabled": standby}}
            }))?;
        }
        self.proxy.put(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": HAPROXY_CM, "namespace": PROXY_NS},
            "data": {"haproxy.cfg": haproxy_cfg(&pg_host("cluster1"))}
        }))
    }

    /// Whether the failover's outcome is in place: cluster1 standby, cluster2 primary and
    /// HAProxy pointing at cluster2. `Err` says what is not.
    pub fn check_failed_over(&self) -> Result<(), String> {
        let standby = |name: &str| {
            self.db
                .sim
                .get_object(
                    "pgv2.percona.com/v2",
                    "perconapgclusters",
                    Some(DB_NS),
                    name,
                )
                .and_then(|o| o["spec"]["standby"]["enabled"].as_bool())
        };
        if standby("cluster1") != Some(true) {
            return Err("cluster1 is not standby".into());
        }
        if standby("cluster2") != Some(false) {
            return Err("cluster2 is not primary".into());
        }
        let cfg = self
            .proxy
            .sim
            .get_object("v1", "configmaps", Some(PROXY_NS), HAPROXY_CM)
            .and_then(|o| o["data"]["haproxy.cfg"].as_str().map(str::to_string))
            .unwrap_or_default();
        let want = format!("server primary {}:5432", pg_host("cluster2"));
        if !cfg.contains(&want) {
            return Err(format!("haproxy.cfg does not contain {want:?}: {cfg:?}"));
        }
        Ok(())
    }

    /// Zeroes the request counters of every cluster.
    pub fn reset_stats(&self) {
        for c in [&self.mgmt, &self.db, &self.proxy] {
            c.sim.reset_stats();
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
/// lifeboat namespace, with the cluster's name and kubeconfig.
async fn register(mgmt: &Cluster, cluster: &Cluster) -> Result<(), WorldError> {
    let name = format!("cluster-{}", cluster.name());
    let secret = lifeboat_api::cluster_secret(
        &name,
        LIFEBOAT_NS,
        cluster.name(),
        &cluster.sim.kubeconfig_yaml(),
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
