//! The demo's simulated world: three clusters and what lives in them before the failover.

use anyhow::Context;

use crate::commands::KubeContext;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use serde_json::{Value, json};

use lifeboat_sim::SimCluster;

/// Namespace lifeboat runs in (mgmt cluster); the plan and the alerts live here too.
pub const LIFEBOAT_NS: &str = "lifeboat-system";
/// Namespace of the database clusters (db cluster).
pub const DB_NS: &str = "ferretdb";
/// Namespace of HAProxy (proxy cluster).
pub const PROXY_NS: &str = "haproxy";
/// The plan the demo applies, as shipped in `examples/`.
pub const PLAN_FILE: &str = "examples/ferretdb-failover.yaml";
pub const PLAN_YAML: &str = include_str!("../../../../../examples/ferretdb-failover.yaml");
/// Address the Percona operator publishes for a primary.
pub fn pg_host(cluster: &str) -> String {
    format!("{cluster}-pgbouncer.{DB_NS}.svc")
}
/// Address of HAProxy's load balancer (a documentation address: nothing is sent there).
pub const PROXY_IP: &str = "203.0.113.10";

/// A simulated cluster and a client for it.
pub struct Cluster {
    pub sim: SimCluster,
    pub client: Client,
}

impl Cluster {
    pub async fn start(name: &str) -> anyhow::Result<Cluster> {
        let sim = SimCluster::start(name)
            .await
            .with_context(|| format!("cannot start simulated cluster {name}"))?;
        let kubeconfig = Kubeconfig::from_yaml(&sim.kubeconfig_yaml())
            .with_context(|| format!("the kubeconfig of cluster {name} does not parse"))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("the kubeconfig of cluster {name} is not usable"))?;
        let client = Client::try_from(config)
            .with_context(|| format!("cannot build a client for cluster {name}"))?;
        Ok(Cluster { sim, client })
    }

    pub fn name(&self) -> &str {
        self.sim.name()
    }
}

/// The PerconaPGCluster resource (`pgv2.percona.com/v2`).
pub fn pg_resource() -> ApiResource {
    ApiResource {
        group: "pgv2.percona.com".into(),
        version: "v2".into(),
        api_version: "pgv2.percona.com/v2".into(),
        kind: "PerconaPGCluster".into(),
        plural: "perconapgclusters".into(),
    }
}

pub fn pg_api(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), DB_NS, &pg_resource())
}

/// A trimmed-down PerconaPGCluster CRD (examples/crds/): the schema keeps
/// `spec.standby.enabled` and `status.host`, which is what the failover touches.
const PG_CRD: &str =
    include_str!("../../../../../examples/crds/perconapgclusters.pgv2.percona.com.yaml");

/// The HAProxy configuration, sending database traffic to `host`.
pub fn haproxy_cfg(host: &str) -> String {
    format!(
        "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30m\n  \
         timeout server 30m\nfrontend postgres\n  bind *:5432\n  default_backend postgres-primary\n\
         backend postgres-primary\n  server primary {host}:5432 check\n"
    )
}

async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create namespace {name}")),
    }
}

/// Creates CRDs and waits until the API server serves them.
async fn install_crds(client: &Client, crds: Vec<CustomResourceDefinition>) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &crd)
            .await
            .kube_context(|| format!("cannot create CRD {name}"))?;
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(std::time::Duration::from_secs(10), established)
            .await
            .with_context(|| format!("CRD {name} was not established within 10s"))?
            .with_context(|| format!("cannot watch CRD {name}"))?;
    }
    Ok(())
}

/// lifeboat's CRDs and namespace in mgmt.
pub async fn prepare_mgmt(mgmt: &Cluster) -> anyhow::Result<()> {
    install_crds(&mgmt.client, lifeboat_api::crds::all()).await?;
    create_namespace(&mgmt.client, LIFEBOAT_NS).await
}

/// Registers `cluster` with lifeboat: a Secret in mgmt's lifeboat namespace, labelled as a
/// cluster Secret, carrying the cluster's name and kubeconfig.
pub async fn register(mgmt: &Cluster, cluster: &Cluster) -> anyhow::Result<String> {
    let secret_name = format!("cluster-{}", cluster.name());
    let secret = lifeboat_api::cluster_secret(
        &secret_name,
        LIFEBOAT_NS,
        cluster.name(),
        &cluster.sim.kubeconfig_yaml(),
    );
    let api: Api<Secret> = Api::namespaced(mgmt.client.clone(), LIFEBOAT_NS);
    api.create(&PostParams::default(), &secret)
        .await
        .kube_context(|| format!("cannot create Secret {LIFEBOAT_NS}/{secret_name}"))?;
    Ok(secret_name)
}

/// The db cluster: the PerconaPGCluster CRD, `cluster1` (primary, serving at its host) and
/// `cluster2` (standby, no host yet).
pub async fn prepare_db(db: &Cluster) -> anyhow::Result<()> {
    let crd: CustomResourceDefinition = serde_yaml::from_str(PG_CRD)
        .context("the PerconaPGCluster CRD in examples/crds/ does not parse")?;
    install_crds(&db.client, vec![crd]).await?;
    create_namespace(&db.client, DB_NS).await?;
    let api = pg_api(&db.client);
    for (name, standby) in [("cluster1", false), ("cluster2", true)] {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "pgv2.percona.com/v2",
            "kind": "PerconaPGCluster",
            "metadata": {"name": name, "namespace": DB_NS},
            "spec": {"postgresVersion": 16, "standby": {"enabled": standby}}
        }))?;
        api.create(&PostParams::default(), &obj)
            .await
            .kube_context(|| format!("cannot create PerconaPGCluster {name}"))?;
        let status = if standby {
            json!({"status": {"state": "standby"}})
        } else {
            json!({"status": {"state": "ready", "host": pg_host(name)}})
        };
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .kube_context(|| format!("cannot set the status of PerconaPGCluster {name}"))?;
    }
    Ok(())
}

/// The proxy cluster: ConfigMap `haproxy-config` pointing at cluster1, and the HAProxy
/// Service with its load balancer address.
pub async fn prepare_proxy(proxy: &Cluster) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::{ConfigMap, Service};
    create_namespace(&proxy.client, PROXY_NS).await?;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "haproxy-config", "namespace": PROXY_NS},
        "data": {"haproxy.cfg": haproxy_cfg(&pg_host("cluster1"))}
    }))?;
    Api::<ConfigMap>::namespaced(proxy.client.clone(), PROXY_NS)
        .create(&PostParams::default(), &cm)
        .await
        .kube_context(|| "cannot create ConfigMap haproxy-config".to_string())?;
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "haproxy", "namespace": PROXY_NS},
        "spec": {"type": "LoadBalancer", "selector": {"app": "haproxy"},
                 "ports": [{"name": "postgres", "port": 5432, "targetPort": 5432}]}
    }))?;
    let services: Api<Service> = Api::namespaced(proxy.client.clone(), PROXY_NS);
    services
        .create(&PostParams::default(), &svc)
        .await
        .kube_context(|| "cannot create Service haproxy".to_string())?;
    let lb = json!({"status": {"loadBalancer": {"ingress": [{"ip": PROXY_IP}]}}});
    services
        .patch_status("haproxy", &PatchParams::default(), &Patch::Merge(&lb))
        .await
        .kube_context(|| "cannot set the load balancer address of Service haproxy".to_string())?;
    Ok(())
}

/// The address clients use: the load balancer address of the HAProxy Service.
pub async fn proxy_address(proxy: &Cluster) -> Option<String> {
    use k8s_openapi::api::core::v1::Service;
    let svc = Api::<Service>::namespaced(proxy.client.clone(), PROXY_NS)
        .get("haproxy")
        .await
        .ok()?;
    svc.status?.load_balancer?.ingress?.first()?.ip.clone()
}

/// The objects the failover touches, as (label, cluster, getter).
pub struct Touched {
    pub label: String,
    pub api: Api<DynamicObject>,
    pub name: String,
    /// Top-level keys shown (metadata is noise for this story).
    pub keys: &'static [&'static str],
}

pub fn touched(db: &Cluster, proxy: &Cluster) -> Vec<Touched> {
    let cm = ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    };
    vec![
        Touched {
            label: format!("db: perconapgclusters {DB_NS}/cluster1"),
            api: pg_api(&db.client),
            name: "cluster1".into(),
            keys: &["spec", "status"],
        },
        Touched {
            label: format!("db: perconapgclusters {DB_NS}/cluster2"),
            api: pg_api(&db.client),
            name: "cluster2".into(),
            keys: &["spec", "status"],
        },
        Touched {
            label: format!("proxy: configmaps {PROXY_NS}/haproxy-config"),
            api: Api::namespaced_with(proxy.client.clone(), PROXY_NS, &cm),
            name: "haproxy-config".into(),
            keys: &["data"],
        },
    ]
}

impl Touched {
    /// The object's shown part as YAML.
    pub async fn snapshot(&self) -> anyhow::Result<String> {
        let obj = self
            .api
            .get(&self.name)
            .await
            .kube_context(|| format!("cannot read {}", self.label))?;
        let value = serde_json::to_value(&obj)?;
        let mut shown = serde_json::Map::new();
        for key in self.keys {
            if let Some(v) = value.get(*key) {
                shown.insert((*key).to_string(), v.clone());
            }
        }
        Ok(serde_yaml::to_string(&Value::Object(shown))?)
    }
}
