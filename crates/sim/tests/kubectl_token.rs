//! The real `kubectl` for ServiceAccount tokens and RBAC: `kubectl create token`, the typed
//! `kubectl create role|rolebinding|clusterrole|clusterrolebinding` commands, and `kubectl
//! apply` of lifeboat's shipped RBAC manifests.
//!
//! kubectl sends no credentials (and no impersonation headers) to a plain-HTTP server, so
//! the tokens it creates are used through kube clients. Skipped (with a message) when
//! kubectl is not on the PATH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{api_error, client_with_token, config_with_token};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::ListParams;
use kube::{Api, Client};
use lifeboat_sim::SimCluster;
use tempfile::TempDir;
use tokio::process::Command;

/// Longest any single kubectl invocation may take before the test fails.
const KUBECTL_DEADLINE: Duration = Duration::from_secs(60);

/// A simulated cluster and kubectl pointed at it.
struct Kubectl {
    cluster: SimCluster,
    dir: TempDir,
    kubeconfig: PathBuf,
}

/// A cluster, or `None` (after saying so) when kubectl is missing.
async fn kubectl(name: &str) -> Option<Kubectl> {
    let found = Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: kubectl is not on the PATH; these tests need the real client");
        return None;
    }
    let cluster = SimCluster::start(name).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    Some(Kubectl {
        cluster,
        dir,
        kubeconfig,
    })
}

impl Kubectl {
    /// Run kubectl: (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = tokio::time::timeout(KUBECTL_DEADLINE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in {KUBECTL_DEADLINE:?}"))
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Run kubectl, require success, return stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args).await;
        assert!(success, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    /// Run kubectl, require failure, return stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let (success, stdout, stderr) = self.run(args).await;
        assert!(
            !success,
            "kubectl {args:?} should have failed, printed:\n{stdout}"
        );
        stderr
    }

    /// A client acting with `token`, impersonating `user` if given.
    async fn client(&self, token: &str, user: Option<&str>, groups: &[&str]) -> Client {
        let mut cfg = config_with_token(&self.cluster, token).await;
        cfg.auth_info.impersonate = user.map(str::to_string);
        if !groups.is_empty() {
            cfg.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
        }
        Client::try_from(cfg).unwrap()
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_token_then_rbac_from_kubectl() {
    let Some(k) = kubectl("kubectl-token").await else {
        return;
    };
    let out = k.ok(&["create", "serviceaccount", "robot"]).await;
    assert_eq!(out.trim(), "serviceaccount/robot created");
    let token = k.ok(&["create", "token", "robot"]).await;
    assert!(
        token.len() >= 32 && !token.contains(char::is_whitespace),
        "kubectl prints one opaque token: {token:?}"
    );
    let robot = client_with_token(&k.cluster, &token).await;
    let cms: Api<ConfigMap> = Api::namespaced(robot.clone(), "default");
    let lp = ListParams::default();
    let status = api_error(cms.list(&lp).await, "list without RBAC");
    assert_eq!(
        status.message,
        "configmaps is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );

    // kubectl's typed create commands (protobuf bodies) for a Role and its binding.
    let out = k
        .ok(&[
            "create",
            "role",
            "cm-reader",
            "--verb=get,list",
            "--resource=configmaps",
        ])
        .await;
    assert_eq!(
        out.trim(),
        "role.rbac.authorization.k8s.io/cm-reader created"
    );
    let out = k
        .ok(&[
            "create",
            "rolebinding",
            "robot-reads",
            "--role=cm-reader",
            "--serviceaccount=default:robot",
        ])
        .await;
    assert_eq!(
        out.trim(),
        "rolebinding.rbac.authorization.k8s.io/robot-reads created"
    );
    assert!(cms.list(&lp).await.is_ok(), "allowed by the RoleBinding");
    let table = k
        .ok(&["get", "rolebinding", "robot-reads", "-o", "wide"])
        .await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.starts_with("robot-reads")
            && row.contains("Role/cm-reader")
            && row.ends_with("default/robot"),
        "{table}"
    );

    // An aggregated ClusterRole and its ClusterRoleBinding, from kubectl.
    k.ok(&[
        "create",
        "clusterrole",
        "reader",
        "--aggregation-rule=example.dev/reader=true",
    ])
    .await;
    k.ok(&[
        "create",
        "clusterrolebinding",
        "robot-reader",
        "--clusterrole=reader",
        "--serviceaccount=default:robot",
    ])
    .await;
    let pods: Api<Pod> = Api::all(robot);
    assert_eq!(
        api_error(pods.list(&lp).await, "nothing aggregated yet").code,
        403
    );
    k.ok(&[
        "create",
        "clusterrole",
        "pod-reader",
        "--verb=list",
        "--resource=pods",
    ])
    .await;
    k.ok(&[
        "label",
        "clusterrole",
        "pod-reader",
        "example.dev/reader=true",
    ])
    .await;
    assert!(pods.list(&lp).await.is_ok(), "aggregated rule");

    // The TokenRequest's own errors, and a token for another audience.
    let err = k.fails(&["create", "token", "ghost"]).await;
    assert!(
        err.contains("failed to create token: serviceaccounts \"ghost\" not found"),
        "{err}"
    );
    let err = k
        .fails(&["create", "token", "robot", "--duration=1m"])
        .await;
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );
    let vault = k
        .ok(&["create", "token", "robot", "--audience=vault"])
        .await;
    let status = api_error(
        Api::<ConfigMap>::namespaced(client_with_token(&k.cluster, &vault).await, "default")
            .list(&lp)
            .await,
        "token for another audience",
    );
    assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
}

/// lifeboat's shipped RBAC (deploy/), applied with kubectl: the controller may impersonate
/// ServiceAccounts but no groups, and may delete Jobs as step retries do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_rbac_allows_what_the_controller_does() {
    let Some(k) = kubectl("kubectl-shipped-rbac").await else {
        return;
    };
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    k.ok(&[
        "apply",
        "-f",
        p(&deploy.join("namespace.yaml")),
        "-f",
        p(&deploy.join("rbac")),
    ])
    .await;
    let token = k
        .ok(&[
            "create",
            "token",
            "lifeboat-controller",
            "-n",
            "lifeboat-system",
        ])
        .await;
    let me = "system:serviceaccount:lifeboat-system:lifeboat-controller";
    let sa = "system:serviceaccount:default:default";
    let lp = ListParams::default();

    // Impersonating a ServiceAccount passes; the request then runs as that account.
    let as_sa = k.client(&token, Some(sa), &[]).await;
    let status = api_error(
        Api::<Pod>::namespaced(as_sa, "default").list(&lp).await,
        "as the impersonated ServiceAccount",
    );
    assert!(
        status.message.starts_with(&format!(
            "pods is forbidden: User \"{sa}\" cannot list resource \"pods\""
        )),
        "{}",
        status.message
    );
    // A group header needs `impersonate` on groups, which is not granted.
    let with_group = k
        .client(&token, Some(sa), &["system:serviceaccounts"])
        .await;
    let status = api_error(
        Api::<Pod>::namespaced(with_group, "default")
            .list(&lp)
            .await,
        "impersonating a group",
    );
    assert_eq!(
        status.message,
        format!(
            "groups \"system:serviceaccounts\" is forbidden: User \"{me}\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
        )
    );

    // As itself: the aggregated step-executor role lets it delete Jobs (a missing one is
    // NotFound, not Forbidden), and Secrets are readable in its own namespace only.
    let controller = client_with_token(&k.cluster, &token).await;
    let status = api_error(
        Api::<Job>::namespaced(controller.clone(), "default")
            .delete("absent", &Default::default())
            .await,
        "delete a missing Job",
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "jobs.batch \"absent\" not found")
    );
    assert!(
        Api::<Secret>::namespaced(controller.clone(), "lifeboat-system")
            .list(&lp)
            .await
            .is_ok()
    );
    let status = api_error(
        Api::<Secret>::namespaced(controller, "default")
            .list(&lp)
            .await,
        "Secrets elsewhere",
    );
    assert_eq!(
        status.message,
        format!(
            "secrets is forbidden: User \"{me}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
        )
    );
}
