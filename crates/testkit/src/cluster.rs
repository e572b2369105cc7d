//! A cluster for a test: simulated or real, with lifeboat's CRDs and the test namespaces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersion;
use kube::discovery::{ApiResource, Scope, pinned_kind};
use kube::{Client, Config};
use lifeboat_sim::SimCluster;
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::kube_process::KubeProcess;
use crate::wait::DEADLINE;

/// lifeboat's own namespace in the tests.
pub const LIFEBOAT_NS: &str = "lifeboat-system";
/// The namespaces every test cluster has (`default` besides).
pub const TEST_NAMESPACES: [&str; 2] = [LIFEBOAT_NS, "team-a"];

/// The field manager of the tests' server-side applies.
const FIELD_MANAGER: &str = "lifeboat-tests";

enum Server {
    Sim(SimCluster),
    Kube(KubeProcess),
}

/// A Kubernetes API server for one test, with an admin client and kubeconfig.
pub struct TestCluster {
    name: String,
    server: Server,
    client: Client,
    kubeconfig_yaml: String,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// A cluster of the backend `LIFEBOAT_TEST_CLUSTER` chooses, with lifeboat's CRDs
    /// (established) and [`TEST_NAMESPACES`].
    pub async fn start(name: &str) -> TestCluster {
        Self::start_on(name, Backend::from_env()).await
    }

    /// A cluster of `backend`, with lifeboat's CRDs and [`TEST_NAMESPACES`]. For tests that
    /// need one backend whatever the setting (fault injection needs the simulator).
    pub async fn start_on(name: &str, backend: Backend) -> TestCluster {
        let cluster = Self::start_empty(name, backend).await;
        cluster.install_crds().await;
        cluster.create_namespaces(&TEST_NAMESPACES).await;
        cluster
    }

    /// A cluster of `backend` as the server starts it: no CRDs, no test namespaces.
    pub async fn start_empty(name: &str, backend: Backend) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let (server, kubeconfig_yaml) = match backend {
            Backend::Sim => {
                let sim = SimCluster::start(name).await.unwrap();
                let text = sim.kubeconfig_yaml();
                (Server::Sim(sim), text)
            }
            Backend::Kube => {
                let (process, text) = KubeProcess::start(name, dir.path()).await;
                (Server::Kube(process), text)
            }
        };
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, &kubeconfig_yaml).unwrap();
        let client = client_from_kubeconfig(&kubeconfig_yaml).await;
        TestCluster {
            name: name.to_string(),
            server,
            client,
            kubeconfig_yaml,
            kubeconfig,
            dir,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn backend(&self) -> Backend {
        match self.server {
            Server::Sim(_) => Backend::Sim,
            Server::Kube(_) => Backend::Kube,
        }
    }

    /// The simulator, for tests that inject faults or read its store; `None` on a real
    /// control plane.
    pub fn sim(&self) -> Option<&SimCluster> {
        match &self.server {
            Server::Sim(sim) => Some(sim),
            Server::Kube(_) => None,
        }
    }

    /// A cluster-admin client.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin kubeconfig, as text and as a file.
    pub fn kubeconfig_yaml(&self) -> &str {
        &self.kubeconfig_yaml
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A directory that lives as long as the cluster (logs, extra kubeconfigs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The control plane's log tail (real backend), for failure messages.
    pub fn server_log(&self) -> String {
        match &self.server {
            Server::Sim(_) => String::new(),
            Server::Kube(p) => p.log_tail(),
        }
    }

    /// How many requests on `resource` (plural, e.g. `jobs`) the API server completed, by
    /// verb and status code, dry runs excluded: the simulator's request counters, or the
    /// real server's audit log (read once).
    fn outcomes(&self, resource: &str) -> BTreeMap<(String, u16), u64> {
        let mut out = BTreeMap::new();
        match &self.server {
            Server::Sim(sim) => {
                for ((verb, r, code), n) in sim.stats().counts {
                    if r == resource {
                        *out.entry((verb, code)).or_default() += n;
                    }
                }
            }
            Server::Kube(process) => {
                for e in process.completed_requests(resource) {
                    let verb = e["verb"].as_str().unwrap_or_default().to_string();
                    let code = e["responseStatus"]["code"].as_u64().unwrap_or_default();
                    *out.entry((verb, u16::try_from(code).unwrap_or_default()))
                        .or_default() += 1;
                }
            }
        }
        out
    }

    /// Checks that the `expected` objects of `resource` that exist now were each created
    /// exactly once (the caller checks which exist). A name can be created again only after
    /// a delete, so: no delete of `resource` was carried out, and the server accepted at
    /// most `expected` creates — exactly `expected` on the simulator, whose counters see
    /// every create. On a real server a create whose client was killed mid-request is
    /// committed but audited as failed (504), so the audited count may be lower.
    pub fn assert_each_created_once(&self, resource: &str, expected: u64, context: &str) {
        let outcomes = self.outcomes(resource);
        let count = |verb: &str, codes: &[u16]| -> u64 {
            outcomes
                .iter()
                .filter(|((v, code), _)| v == verb && codes.contains(code))
                .map(|(_, n)| *n)
                .sum()
        };
        let (created, deletes) = (count("create", &[201]), count("delete", &[200, 202]));
        let audited = || format!("{:#?}", self.audited_creates(resource));
        assert_eq!(
            deletes,
            0,
            "{resource} were deleted (and so may have been created again): {}\n{context}",
            audited()
        );
        match self.backend() {
            Backend::Sim => assert_eq!(
                created, expected,
                "{resource} creations accepted\n{context}"
            ),
            Backend::Kube => assert!(
                created <= expected,
                "{created} creations of {resource} accepted, {expected} expected: {}\n{context}",
                audited()
            ),
        }
    }

    /// Every create of `resource` as the real server audited it (time, code, name, user,
    /// request URI), for failure messages; `None` on the simulator.
    fn audited_creates(&self, resource: &str) -> Option<Vec<String>> {
        match &self.server {
            Server::Sim(_) => None,
            Server::Kube(process) => Some(
                process
                    .completed_requests(resource)
                    .iter()
                    .filter(|e| e["verb"] == "create")
                    .map(|e| {
                        format!(
                            "{} {} {} by {} {}",
                            e["stageTimestamp"].as_str().unwrap_or(""),
                            e["responseStatus"]["code"],
                            e["objectRef"]["name"].as_str().unwrap_or("?"),
                            e["user"]["username"].as_str().unwrap_or("?"),
                            e["requestURI"].as_str().unwrap_or("")
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// `kubectl` with this cluster's admin kubeconfig.
    pub fn kubectl(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// Creates lifeboat's CRDs and waits until the server serves them.
    pub async fn install_crds(&self) {
        if let Some(sim) = self.sim() {
            for crd in lifeboat_api::crds::all() {
                sim.apply_object(serde_json::to_value(&crd).unwrap())
                    .unwrap();
            }
            return;
        }
        let crds: Api<CustomResourceDefinition> = Api::all(self.client());
        for crd in lifeboat_api::crds::all() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        for crd in lifeboat_api::crds::all() {
            let name = crd.metadata.name.clone().unwrap();
            let established = |c: Option<&CustomResourceDefinition>| {
                c.and_then(|c| c.status.as_ref())
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
            };
            crate::wait::wait_for_state(
                crds.clone(),
                &name,
                "CRD not established",
                established,
                &|| self.server_log(),
            )
            .await;
        }
    }

    /// Creates the namespaces that do not exist yet.
    pub async fn create_namespaces(&self, names: &[&str]) {
        for ns in names {
            self.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                .await;
        }
    }

    /// Creates or updates `obj` (server-side apply, forced) and returns it as stored. Its
    /// namespace defaults to `default` for namespaced kinds.
    pub async fn apply(&self, obj: Value) -> Value {
        if let Some(sim) = self.sim() {
            return sim.apply_object(obj).unwrap();
        }
        let (api, name) = self.api_for(&obj).await;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = api
            .patch(&name, &params, &Patch::Apply(&obj))
            .await
            .unwrap_or_else(|e| panic!("applying {name}: {e}"));
        serde_json::to_value(applied).unwrap()
    }

    /// The object as stored, `None` if it does not exist.
    pub async fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        if let Some(sim) = self.sim() {
            return sim.get_object(api_version, plural, namespace, name);
        }
        let ar =
            ApiResource::from_gvk_with_plural(&group_version(api_version).with_kind(""), plural);
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client(), ns, &ar),
            None => Api::all_with(self.client(), &ar),
        };
        let obj = api
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("GET {plural} {name}: {e}"))?;
        Some(serde_json::to_value(obj).unwrap())
    }

    /// Lets `subject` (a user such as `system:serviceaccount:NS:NAME`, or a group such as
    /// `system:serviceaccounts`) do `verbs` on `resource` of API group `group`, in
    /// `namespace` or cluster-wide. On a real server this is plain RBAC (a Role or
    /// ClusterRole and its binding), and returns once the authorizer agrees.
    pub async fn allow(
        &self,
        subject: &str,
        verbs: &[&str],
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) {
        if let Some(sim) = self.sim() {
            sim.authz()
                .allow(subject, verbs, group, resource, namespace);
            return;
        }
        let name = format!(
            "test-{}-{}-{}",
            sanitize(subject),
            sanitize(resource),
            verbs.join("-")
        );
        let (role_kind, binding_kind) = match namespace {
            Some(_) => ("Role", "RoleBinding"),
            None => ("ClusterRole", "ClusterRoleBinding"),
        };
        let mut meta = json!({"name": name});
        if let Some(ns) = namespace {
            meta["namespace"] = json!(ns);
        }
        self.apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": role_kind, "metadata": meta,
            "rules": [{"apiGroups": [group], "resources": [resource], "verbs": verbs}]
        }))
        .await;
        let subject_ref = match subject.strip_prefix("system:serviceaccount:") {
            Some(rest) => {
                let (ns, sa) = rest.split_once(':').unwrap();
                json!({"kind": "ServiceAccount", "name": sa, "namespace": ns})
            }
            None if subject.starts_with("system:") => {
                json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": subject})
            }
            None => {
                json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": subject})
            }
        };
        self.apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding_kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [subject_ref]
        }))
        .await;
        // The authorizer reads RBAC objects from an informer: wait until it has them.
        for verb in verbs {
            self.wait_allowed(subject, verb, group, resource, namespace)
                .await;
        }
    }

    /// Waits until the authorizer lets `subject` do `verb` on `resource` (RBAC is read from
    /// an informer, so a new binding takes a moment to count).
    pub async fn wait_allowed(
        &self,
        subject: &str,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) {
        let is_group =
            subject.starts_with("system:") && !subject.starts_with("system:serviceaccount:");
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: (!is_group).then(|| subject.to_string()),
                groups: is_group.then(|| vec![subject.to_string()]),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.to_string()),
                    group: Some(group.to_string()),
                    resource: Some(resource.to_string()),
                    namespace: namespace.map(str::to_string),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client());
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let answer = api.create(&PostParams::default(), &review).await.unwrap();
            if answer.status.is_some_and(|s| s.allowed) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "RBAC never allowed {subject} to {verb} {resource}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The API and name of `obj`, found through discovery.
    async fn api_for(&self, obj: &Value) -> (Api<DynamicObject>, String) {
        let api_version = obj["apiVersion"].as_str().expect("apiVersion");
        let kind = obj["kind"].as_str().expect("kind");
        let name = obj["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_string();
        let gvk = group_version(api_version).with_kind(kind);
        let (ar, caps) = pinned_kind(&self.client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("discovering {api_version} {kind}: {e}"));
        let api = match caps.scope {
            Scope::Namespaced => {
                let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
                Api::namespaced_with(self.client(), ns, &ar)
            }
            Scope::Cluster => Api::all_with(self.client(), &ar),
        };
        (api, name)
    }
}

fn group_version(api_version: &str) -> GroupVersion {
    api_version
        .parse()
        .unwrap_or_else(|e| panic!("apiVersion {api_version:?}: {e}"))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// A client configuration from a kubeconfig's text.
pub async fn config_from_kubeconfig(yaml: &str) -> Config {
    let kc = Kubeconfig::from_yaml(yaml).unwrap();
    Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap()
}

/// A client from a kubeconfig's text.
pub async fn client_from_kubeconfig(yaml: &str) -> Client {
    Client::try_from(config_from_kubeconfig(yaml).await).unwrap()
}
