//! Clients for the clusters steps act on.
//!
//! Clusters are registered as Secrets in lifeboat's namespace labelled
//! `recovery.elotl.co/secret-type: cluster` (the Argo CD convention), with data keys `name`
//! (the cluster's name; defaults to the Secret's name) and `kubeconfig` (YAML). A step's
//! `cluster` picks one; no `cluster` means the cluster lifeboat runs in.
//!
//! Clients are built once and cached; a cluster's client is rebuilt when its Secret changes
//! (new resourceVersion). Impersonating clients (a plan's `serviceAccountName`) are cached per
//! (cluster, namespace, service account):
//! - for registered clusters the client is built from the kubeconfig with
//!   `auth_info.impersonate = system:serviceaccount:<ns>:<sa>`;
//! - for the local cluster, whose `kube::Config` lifeboat was not given, the same
//!   `Impersonate-User` header is added to every request on top of the local client, so
//!   the connection pool is shared.
//!
//! No `Impersonate-Group` is sent: for a ServiceAccount user kube-apiserver adds the
//! account's groups (`system:serviceaccounts`, `system:serviceaccounts:<ns>`) itself, and
//! every group header would need its own `impersonate` permission on `groups`.
//!
//! API discovery (apiVersion + plural resource → `ApiResource`) is cached per cluster and
//! apiVersion.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{Future, Stream, StreamExt};
use http::{HeaderName, HeaderValue, Request};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersion;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use lifeboat_api::{CLUSTER_SECRET_TYPE, LABEL_CLUSTER_SECRET};

/// How long a lookup waits for the first list of cluster Secrets.
const STORE_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no client could be had for a cluster, or a resource could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "cluster {cluster:?} is not registered (no Secret labelled {label}={value} with name {cluster:?} in namespace {namespace})",
        label = LABEL_CLUSTER_SECRET,
        value = CLUSTER_SECRET_TYPE
    )]
    NotRegistered { cluster: String, namespace: String },
    #[error("cluster Secret {namespace}/{secret} is invalid: {reason}")]
    InvalidSecret {
        namespace: String,
        secret: String,
        reason: String,
    },
    #[error("the kubeconfig of cluster {cluster:?} is invalid: {source}")]
    Kubeconfig {
        cluster: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot build a client for cluster {cluster:?}: {source}")]
    Client {
        cluster: String,
        #[source]
        source: kube::Error,
    },
    #[error("invalid service account name {0:?} for impersonation")]
    InvalidServiceAccount(String),
    #[error("invalid apiVersion {0:?}")]
    InvalidApiVersion(String),
    /// Worded by the failure: a cluster that could not be reached says so first, what a
    /// user needs to read first on the worst day.
    #[error("{}", discovery_message(cluster, api_version, source))]
    Discovery {
        cluster: String,
        api_version: String,
        #[source]
        source: kube::Error,
    },
    #[error("resource {resource:?} not found in apiVersion {api_version} on {cluster}")]
    UnknownResource {
        cluster: String,
        api_version: String,
        resource: String,
    },
    #[error(
        "the list of registered clusters is not available yet (watch on Secrets in {0} not synced)"
    )]
    NotSynced(String),
}

fn discovery_message(cluster: &str, api_version: &str, source: &kube::Error) -> String {
    if crate::api_errors::is_connection_error(source) {
        format!("{cluster} is unreachable (API discovery of {api_version}): {source}")
    } else {
        format!("API discovery of {api_version} failed on {cluster}: {source}")
    }
}

impl ClusterError {
    /// Whether retrying later may help (API errors of discovery, unsynced store).
    pub fn is_transient(&self) -> bool {
        match self {
            ClusterError::Discovery { source, .. } => crate::api_errors::is_transient(source),
            ClusterError::NotSynced(_) => true,
            _ => false,
        }
    }
}

/// A resolved resource: what `Api<DynamicObject>` needs, and whether it is namespaced.
#[derive(Clone, Debug)]
pub struct ResolvedResource {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// Human name of a cluster in messages.
pub fn display_cluster(cluster: Option<&str>) -> String {
    match cluster {
        Some(c) => format!("cluster {c:?}"),
        None => "the local cluster".to_string(),
    }
}

type ImpersonationKey = (String, String);

/// One cluster's clients and discovery cache.
struct ClusterClients {
    /// resourceVersion of the Secret the clients were built from ("" for the local cluster).
    resource_version: String,
    /// The kubeconfig-derived config (registered clusters only).
    config: Option<Config>,
    client: Client,
    impersonated: HashMap<ImpersonationKey, Client>,
    discovery: HashMap<String, Arc<Vec<(ApiResource, ApiCapabilities)>>>,
}

impl ClusterClients {
    fn new(resource_version: String, config: Option<Config>, client: Client) -> Self {
        ClusterClients {
            resource_version,
            config,
            client,
            impersonated: HashMap::new(),
            discovery: HashMap::new(),
        }
    }
}

struct Inner {
    namespace: String,
    secrets: Option<Store<Secret>>,
    /// Key: cluster name, "" for the local cluster.
    clusters: Mutex<HashMap<String, ClusterClients>>,
    /// Bumped whenever the set of registered cluster names changes.
    changes: tokio::sync::watch::Sender<u64>,
}

/// Clients for the local cluster and every registered cluster. Cheap to clone.
#[derive(Clone)]
pub struct ClusterRegistry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClusterRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRegistry")
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

impl ClusterRegistry {
    /// A registry fed by `secrets` (a store of the cluster Secrets of `namespace`, see
    /// [`ClusterRegistry::watch`]). With `None`, only the local cluster is known.
    pub fn new(local: Client, namespace: &str, secrets: Option<Store<Secret>>) -> Self {
        let mut clusters = HashMap::new();
        clusters.insert(
            String::new(),
            ClusterClients::new(String::new(), None, local.clone()),
        );
        ClusterRegistry {
            inner: Arc::new(Inner {
                namespace: namespace.to_string(),
                secrets,
                clusters: Mutex::new(clusters),
                changes: tokio::sync::watch::channel(0).0,
            }),
        }
    }

    /// A registry watching the cluster Secrets of `namespace`. The returned future drives the
    /// watch and must be spawned; it ends only when dropped.
    pub fn watch(
        local: Client,
        namespace: &str,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let api: Api<Secret> = Api::namespaced(local.clone(), namespace);
        let (reader, writer) = reflector::store();
        let selector = format!("{LABEL_CLUSTER_SECRET}={CLUSTER_SECRET_TYPE}");
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default().labels(&selector)),
        )
        .default_backoff();
        let registry = Self::new(local, namespace, Some(reader));
        let this = registry.clone();
        let drive = async move {
            futures::pin_mut!(stream);
            let mut names = BTreeSet::new();
            while let Some(item) = stream.next().await {
                match item {
                    Err(e) => {
                        tracing::warn!(error = %e, "watch of cluster Secrets failed; retrying");
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Ok(_) => {
                        let now = this.cluster_names();
                        if now != names {
                            tracing::info!(clusters = ?now, "registered clusters changed");
                            names = now;
                            this.inner.changes.send_modify(|n| *n += 1);
                        }
                    }
                }
            }
        };
        (registry, drive)
    }

    /// Yields whenever the set of registered cluster names changes (plans naming clusters
    /// are then validated again). Only changes after the call are reported.
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + 'static {
        let rx = self.inner.changes.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }

    /// Waits until the cluster Secrets have been listed once (no-op without a store).
    pub async fn wait_ready(&self) -> Result<(), ClusterError> {
        if let Some(store) = &self.inner.secrets {
            tokio::time::timeout(STORE_READY_TIMEOUT, crate::cache::store_ready(store))
                .await
                .map_err(|_| ClusterError::NotSynced(self.inner.namespace.clone()))?;
        }
        Ok(())
    }

    /// Names of the registered clusters (for plan validation).
    pub fn cluster_names(&self) -> BTreeSet<String> {
        let Some(store) = &self.inner.secrets else {
            return BTreeSet::new();
        };
        store
            .state()
            .iter()
            .filter_map(|s| secret_cluster_name(s).ok())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ClusterClients>> {
        self.inner
            .clusters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Finds the Secret registering `cluster`.
    fn find_secret(&self, cluster: &str) -> Result<Arc<Secret>, ClusterError> {
        let not_registered = || ClusterError::NotRegistered {
            cluster: cluster.to_string(),
            namespace: self.inner.namespace.clone(),
        };
        let store = self.inner.secrets.as_ref().ok_or_else(not_registered)?;
        store
            .state()
            .into_iter()
            .find(|s| secret_cluster_name(s).is_ok_and(|n| n == cluster))
            .ok_or_else(not_registered)
    }

    /// Makes sure the cached clients of `cluster` match its Secret; returns the cache key.
    async fn ensure(&self, cluster: Option<&str>) -> Result<String, ClusterError> {
        let Some(cluster) = cluster else {
            return Ok(String::new());
        };
        if cluster.is_empty() {
            return Err(ClusterError::NotRegistered {
                cluster: String::new(),
                namespace: self.inner.namespace.clone(),
            });
        }
        self.wait_ready().await?;
        let secret = self.find_secret(cluster)?;
        let rv = secret.metadata.resource_version.clone().unwrap_or_default();
        if self
            .lock()
            .get(cluster)
            .is_some_and(|c| c.resource_version == rv)
        {
            return Ok(cluster.to_string());
        }
        let config = self.config_from_secret(cluster, &secret).await?;
        let client =
            crate::api_client::build(config.clone()).map_err(|source| ClusterError::Client {
                cluster: cluster.to_string(),
                source,
            })?;
        tracing::info!(cluster, resource_version = %rv, "built client for registered cluster");
        self.lock().insert(
            cluster.to_string(),
            ClusterClients::new(rv, Some(config), client),
        );
        Ok(cluster.to_string())
    }

    async fn config_from_secret(
        &self,
        cluster: &str,
        secret: &Secret,
    ) -> Result<Config, ClusterError> {
        let invalid = |reason: &str| ClusterError::InvalidSecret {
            namespace: self.inner.namespace.clone(),
            secret: secret.metadata.name.clone().unwrap_or_default(),
            reason: reason.to_string(),
        };
        let raw =
            secret_data(secret, "kubeconfig").ok_or_else(|| invalid("no `kubeconfig` key"))?;
        let text = String::from_utf8(raw).map_err(|_| invalid("`kubeconfig` is not UTF-8"))?;
        let kubeconfig =
            Kubeconfig::from_yaml(&text).map_err(|source| ClusterError::Kubeconfig {
                cluster: cluster.to_string(),
                source,
            })?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| ClusterError::Kubeconfig {
                cluster: cluster.to_string(),
                source,
            })
    }

    /// The client for `cluster` (None = local), impersonating `service_account`
    /// (namespace, name) when given.
    pub async fn client_for(
        &self,
        cluster: Option<&str>,
        service_account: Option<(&str, &str)>,
    ) -> Result<Client, ClusterError> {
        let key = self.ensure(cluster).await?;
        let mut clusters = self.lock();
        let entry = clusters
            .get_mut(&key)
            .ok_or_else(|| ClusterError::NotRegistered {
                cluster: key.clone(),
                namespace: self.inner.namespace.clone(),
            })?;
        let Some((ns, sa)) = service_account else {
            return Ok(entry.client.clone());
        };
        let ikey = (ns.to_string(), sa.to_string());
        if let Some(c) = entry.impersonated.get(&ikey) {
            return Ok(c.clone());
        }
        let user = impersonation_user(ns, sa)?;
        let client = match &entry.config {
            Some(config) => {
                let mut config = config.clone();
                config.auth_info.impersonate = Some(user);
                config.auth_info.impersonate_groups = None;
                crate::api_client::build(config).map_err(|source| ClusterError::Client {
                    cluster: key.clone(),
                    source,
                })?
            }
            None => impersonating(entry.client.clone(), &user)?,
        };
        entry.impersonated.insert(ikey, client.clone());
        Ok(client)
    }

    /// Resolves `apiVersion` + plural `resource` on `cluster` through API discovery
    /// (cached per cluster and apiVersion; re-queried once when the resource is unknown, so a
    /// CRD installed later is found).
    pub async fn resolve(
        &self,
        cluster: Option<&str>,
        api_version: &str,
        resource: &str,
    ) -> Result<ResolvedResource, ClusterError> {
        let key = self.ensure(cluster).await?;
        let (cached, client) = {
            let clusters = self.lock();
            let entry = clusters
                .get(&key)
                .ok_or_else(|| ClusterError::NotRegistered {
                    cluster: key.clone(),
                    namespace: self.inner.namespace.clone(),
                })?;
            (
                entry.discovery.get(api_version).cloned(),
                entry.client.clone(),
            )
        };
        if let Some(found) = cached.as_deref().and_then(|rs| find_resource(rs, resource)) {
            return Ok(found);
        }
        let gv: GroupVersion = api_version
            .parse()
            .map_err(|_| ClusterError::InvalidApiVersion(api_version.to_string()))?;
        let group = kube::discovery::pinned_group(&client, &gv)
            .await
            .map_err(|source| ClusterError::Discovery {
                cluster: display_cluster(cluster),
                api_version: api_version.to_string(),
                source,
            })?;
        let resources = Arc::new(group.versioned_resources(&gv.version));
        let found = find_resource(&resources, resource);
        if let Some(entry) = self.lock().get_mut(&key) {
            entry.discovery.insert(api_version.to_string(), resources);
        }
        found.ok_or_else(|| ClusterError::UnknownResource {
            cluster: display_cluster(cluster),
            api_version: api_version.to_string(),
            resource: resource.to_string(),
        })
    }
}

fn find_resource(
    resources: &[(ApiResource, ApiCapabilities)],
    plural: &str,
) -> Option<ResolvedResource> {
    resources
        .iter()
        .find(|(r, _)| r.plural == plural)
        .map(|(r, caps)| ResolvedResource {
            resource: r.clone(),
            namespaced: caps.scope == Scope::Namespaced,
        })
}

/// The `name` a cluster Secret registers (data key `name`, else the Secret's name).
pub fn secret_cluster_name(secret: &Secret) -> Result<String, String> {
    if let Some(raw) = secret_data(secret, "name") {
        let name = String::from_utf8(raw).map_err(|_| "`name` is not UTF-8".to_string())?;
        let name = name.trim().to_string();
        if !name.is_empty() {
            return Ok(name);
        }
    }
    secret
        .metadata
        .name
        .clone()
        .ok_or_else(|| "Secret has no name".to_string())
}

fn secret_data(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    if let Some(v) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(v.0.clone());
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| s.as_bytes().to_vec())
}

/// The user a service account is impersonated as.
pub fn impersonation_user(namespace: &str, service_account: &str) -> Result<String, ClusterError> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    if !valid(namespace) || !valid(service_account) {
        return Err(ClusterError::InvalidServiceAccount(format!(
            "{namespace}/{service_account}"
        )));
    }
    Ok(format!(
        "system:serviceaccount:{namespace}:{service_account}"
    ))
}

/// A client sending every request of `base` with an `Impersonate-User` header.
fn impersonating(base: Client, user: &str) -> Result<Client, ClusterError> {
    let bad = |_| ClusterError::InvalidServiceAccount(user.to_string());
    let user = HeaderValue::from_str(user).map_err(bad)?;
    let default_ns = base.default_namespace().to_string();
    let service = tower::service_fn(move |mut req: Request<kube::client::Body>| {
        let base = base.clone();
        let headers = req.headers_mut();
        headers.insert(HeaderName::from_static("impersonate-user"), user.clone());
        async move { base.send(req).await }
    });
    Ok(Client::new(service, default_ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn cluster_name_from_data_or_secret_name() {
        assert_eq!(
            secret_cluster_name(&secret("s1", &[("name", "db")])).unwrap(),
            "db"
        );
        assert_eq!(secret_cluster_name(&secret("s1", &[])).unwrap(), "s1");
        assert_eq!(
            secret_cluster_name(&secret("s1", &[("name", "  ")])).unwrap(),
            "s1"
        );
    }

    #[test]
    fn impersonation_user_of_a_service_account() {
        let user = impersonation_user("team-a", "recovery").unwrap();
        assert_eq!(user, "system:serviceaccount:team-a:recovery");
        assert!(impersonation_user("team-a", "bad\nname").is_err());
        assert!(impersonation_user("", "sa").is_err());
    }

    #[test]
    fn not_registered_message_names_the_label_and_namespace() {
        let e = ClusterError::NotRegistered {
            cluster: "x".into(),
            namespace: "lifeboat-system".into(),
        };
        assert_eq!(
            e.to_string(),
            "cluster \"x\" is not registered (no Secret labelled recovery.elotl.co/secret-type=cluster with name \"x\" in namespace lifeboat-system)"
        );
    }
}
