//! The Helm chart (charts/lifeboat) installed with `helm install` on a real control plane
//! (testing/kube: etcd, kube-apiserver with Pod Security admission and RBAC,
//! kube-controller-manager with the deployment, replicaset, job and garbage-collector
//! controllers, and a node agent), then the seed plan run with nothing but what the chart
//! grants.
//!
//! The control plane has no container runtime: the node agent binds the chart's pods and
//! reports them Running and Ready, but no container really executes. So the controller runs
//! on the host, as a process, with the identity of the chart's pod — a token of the chart's
//! ServiceAccount bound to that pod — and the arguments of the chart's Deployment as
//! installed (listen addresses on loopback, the mounted Secrets written to a directory).
//! What this proves is the chart: its objects are accepted by a real API server (the pods
//! under the `restricted` Pod Security Standard of the namespace the chart creates), the
//! Deployment becomes Available, and its RBAC, token Secret and flags suffice for the
//! webhook and for a run to complete; `helm uninstall` then leaves no lifeboat workload and
//! no cluster-scoped RBAC behind.
//!
//! Needs the real server, so it runs only with `LIFEBOAT_TEST_CLUSTER=kube`
//! (scripts/test.sh; the simulator pass excludes this binary by name in
//! .config/nextest.toml), and helm from scripts/build-tools.sh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/webhook_harness.rs"]
mod harness;

use lifeboat_testkit::repo_root;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::{am_alert, am_payload, post};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};
use lifeboat_api::{ReceivedAlert, RunPhase, StepPhase};
use lifeboat_operator::naming;
use lifeboat_testkit::scenarios::{self, create, seed_pod};
use lifeboat_testkit::wait::{eventually, wait_alert_processed, wait_plan_validated};
use lifeboat_testkit::{Backend, ControllerProcess, LIFEBOAT_NS, TestCluster, yaml};
use serde_json::{Value, json};

/// The release lives in `default`; the chart creates lifeboat's namespace itself, labelled
/// for Pod Security (Helm stores a release in its namespace before creating anything, so
/// that namespace cannot be one the chart creates).
const RELEASE_NS: &str = "default";
const RELEASE: &str = "lifeboat";
const TENANT: &str = "team-a";
const TOKEN: &str = "chart-install-webhook-token";
/// The workload's labels (the chart's selector labels).
const SELECTOR: &str = "app.kubernetes.io/name=lifeboat,app.kubernetes.io/component=controller";

/// helm as scripts/build-tools.sh builds it; its absence is a failure, not a skip.
fn helm(cluster: &TestCluster) -> Command {
    let bin = repo_root().join("target/tools/helm");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `bash scripts/build-tools.sh`",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig").arg(cluster.kubeconfig());
    cmd
}

/// Runs `cmd`; fails with its output unless it succeeds.
fn succeed(mut cmd: Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Whether the chart's ServiceAccount may `verb` `resource` cluster-wide, as the API server's
/// authorizer answers (`kubectl auth can-i`, impersonating the account).
fn controller_can(cluster: &TestCluster, verb: &str, resource: &str) -> bool {
    let mut cmd = cluster.kubectl();
    cmd.args(["auth", "can-i", verb, resource, "--all-namespaces"])
        .arg(format!(
            "--as=system:serviceaccount:{LIFEBOAT_NS}:lifeboat-controller"
        ));
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The names of the cluster-scoped RBAC objects starting with `lifeboat-`.
fn lifeboat_cluster_rbac(cluster: &TestCluster) -> Vec<String> {
    let mut get = cluster.kubectl();
    get.args(["get", "clusterroles,clusterrolebindings", "-o", "name"]);
    succeed(get)
        .lines()
        .filter(|l| {
            l.split('/')
                .nth(1)
                .is_some_and(|n| n.starts_with("lifeboat-"))
        })
        .map(str::to_owned)
        .collect()
}

/// A seed example from ../shared/seed-examples, as a user applies it.
fn seed_example(file: &str) -> Value {
    let path = repo_root().join("../shared/seed-examples").join(file);
    yaml(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// A kubeconfig for the same server authenticating as the chart's ServiceAccount, with a
/// token bound to `pod` (TokenRequest, as the kubelet projects it into the pod).
async fn pod_identity_kubeconfig(cluster: &TestCluster, pod: &Pod) -> PathBuf {
    let pod_spec = pod.spec.as_ref().unwrap();
    let account = pod_spec.service_account_name.clone().unwrap();
    let pod_name = pod.metadata.name.clone().unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod_name.clone()),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client(), LIFEBOAT_NS);
    let token = accounts
        .create_token_request(&account, &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let mut kubeconfig: Value = yaml(cluster.kubeconfig_yaml());
    kubeconfig["users"][0]["user"] = json!({ "token": token });
    let path = cluster.dir().join(format!("{pod_name}.kubeconfig"));
    std::fs::write(&path, serde_json::to_string(&kubeconfig).unwrap()).unwrap();
    path
}

/// The Deployment's container arguments for a process on this host: the Secrets it mounts
/// written under `dir` (mount paths rewritten to match), listen addresses on loopback
/// ports the OS chooses, and without what [`ControllerProcess`] sets itself (the
/// subcommand, --health-addr; --namespace and --identity come from the pod's environment
/// in the cluster and from the test here).
async fn host_args(cluster: &TestCluster, deployment: &Deployment, dir: &Path) -> Vec<String> {
    let pod_spec = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap();
    let container: &Container = &pod_spec.containers[0];
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), LIFEBOAT_NS);
    let mut mounts = BTreeMap::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = pod_spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        let source = volume
            .secret
            .as_ref()
            .unwrap_or_else(|| panic!("volume {} is not a Secret", volume.name));
        let secret = secrets
            .get(source.secret_name.as_deref().unwrap())
            .await
            .unwrap();
        let local = dir.join(&mount.name);
        std::fs::create_dir_all(&local).unwrap();
        let data = secret.data.unwrap_or_default();
        let files: Vec<(String, String)> = match &source.items {
            Some(items) => items
                .iter()
                .map(|i| (i.key.clone(), i.path.clone()))
                .collect(),
            None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
        };
        for (key, file) in files {
            let ByteString(bytes) = &data[&key];
            std::fs::write(local.join(file), bytes).unwrap();
        }
        mounts.insert(mount.mount_path.clone(), local.display().to_string());
    }
    let args = container.args.clone().unwrap();
    assert_eq!(args[0], "controller", "{args:?}");
    args[1..]
        .iter()
        .filter(|a| !a.starts_with("--health-addr"))
        .map(|a| match a.split_once('=') {
            Some(("--webhook-addr", _)) => "--webhook-addr=127.0.0.1:0".to_string(),
            Some((flag, value)) => {
                let value = mounts
                    .iter()
                    .find_map(|(path, local)| {
                        value
                            .strip_prefix(path.as_str())
                            .map(|rest| format!("{local}{rest}"))
                    })
                    .unwrap_or_else(|| value.to_string());
                format!("{flag}={value}")
            }
            None => a.clone(),
        })
        .collect()
}

#[tokio::test]
async fn chart_installs_becomes_available_runs_the_seed_plan_and_uninstalls() {
    assert_eq!(
        Backend::from_env(),
        Backend::Kube,
        "tests/chart_install.rs needs {}=kube (scripts/test.sh sets it)",
        Backend::ENV
    );
    // As the server starts: no CRDs (the chart installs them), no lifeboat namespace.
    let cluster = TestCluster::start_empty("chart", Backend::Kube).await;
    cluster.create_namespaces(&[TENANT]).await;
    // A platform team's own grant for steps, which the chart's aggregated role picks up.
    cluster
        .apply(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "statefulset-steps",
                "labels": {"recovery.elotl.co/aggregate-to-step-executor": "true"}
            },
            "rules": [{
                "apiGroups": ["apps"],
                "resources": ["statefulsets"],
                "verbs": ["patch"]
            }]
        }))
        .await;
    let client = cluster.client();
    let diag = || cluster.server_log();

    let mut install = helm(&cluster);
    install
        .args(["install", RELEASE])
        .arg(repo_root().join("charts/lifeboat"))
        .args(["--namespace", RELEASE_NS, "--timeout", "2m"])
        .args(["--set", "namespace.create=true"])
        .args(["--set", &format!("namespace.name={LIFEBOAT_NS}")])
        .args(["--set", &format!("webhookToken.value={TOKEN}")])
        .args(["--set", &format!("tenantNamespaces={{{TENANT}}}")])
        .args(["--set", "approvers[0].kind=Group"])
        .args(["--set", "approvers[0].name=oncall"])
        .args([
            "--set-json",
            r#"stepExecutor.extraRules=[{"apiGroups":["apps"],"resources":["deployments"],"verbs":["patch"]}]"#,
        ]);
    succeed(install);

    // What steps may do as the controller: the chart's defaults, values
    // stepExecutor.extraRules, and the team's labelled role (aggregated by
    // kube-controller-manager, so eventually) — and nothing else.
    assert!(controller_can(&cluster, "create", "jobs.batch"));
    assert!(controller_can(&cluster, "patch", "deployments.apps"));
    eventually("the labelled role to be aggregated", || async {
        controller_can(&cluster, "patch", "statefulsets.apps").then_some(())
    })
    .await;
    assert!(!controller_can(&cluster, "delete", "deployments.apps"));
    assert!(!controller_can(&cluster, "get", "secrets"));

    // The namespace enforces the restricted Pod Security Standard: the chart's pods were
    // admitted under it, and a pod that does not meet it is refused.
    let namespace = Api::<Namespace>::all(client.clone())
        .get(LIFEBOAT_NS)
        .await
        .unwrap();
    let labels = namespace.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted"),
        "{labels:?}"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), LIFEBOAT_NS);
    let root_pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "runs-as-root"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    let refused = pods.create(&PostParams::default(), &root_pod).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("restricted")),
        "a pod violating the restricted standard must be refused: {refused:?}"
    );

    // Both replicas Ready (as the node agent reports them), the Deployment Available.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), LIFEBOAT_NS);
    let available = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
            s.available_replicas == Some(2)
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Available" && c.status == "True")
        })
    };
    let deployment = lifeboat_testkit::wait::wait_for_state(
        deployments.clone(),
        "lifeboat-controller",
        "the chart's Deployment is not Available with 2 replicas",
        available,
        &diag,
    )
    .await;
    let running = pods
        .list(&ListParams::default().labels(SELECTOR))
        .await
        .unwrap();
    assert_eq!(running.items.len(), 2, "two replicas");
    let pod = &running.items[0];
    let pod_spec = pod.spec.as_ref().unwrap();
    assert_eq!(
        pod_spec.service_account_name.as_deref(),
        Some("lifeboat-controller")
    );
    let security = pod_spec.security_context.as_ref().unwrap();
    assert_eq!(
        (security.run_as_user, security.run_as_group),
        (Some(65532), Some(65532))
    );

    // The controller, on the host, as that pod and with its Deployment's arguments.
    let kubeconfig = pod_identity_kubeconfig(&cluster, pod).await;
    let mounts = cluster.dir().join("mounts");
    let args = host_args(&cluster, &deployment, &mounts).await;
    assert!(
        args.contains(&format!("--tenant-namespace={TENANT}")),
        "{args:?}"
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ctl = ControllerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_lifeboat")),
        &kubeconfig,
        cluster.dir(),
        pod.metadata.name.as_deref().unwrap(),
        &args,
    )
    .await;
    let ctl_diag = || ctl.diag();

    // The webhook with the chart's token, into the tenant namespace the chart enabled.
    let alert = am_alert(
        "firing",
        &[("alertname", "DatabaseDown"), ("team", TENANT)],
        "2024-05-01T10:00:00Z",
        Some("c0ffee0000000001"),
    );
    let url = ctl.webhook_url(&format!("/webhook/{TENANT}"));
    let http = reqwest::Client::new();
    let (status, body) = post(
        &http,
        &url,
        Some(TOKEN),
        &am_payload("lifeboat", vec![alert.clone()]),
    )
    .await;
    assert_eq!(status, 200, "{body}\n{}", ctl.diag());
    let (status, _) = post(
        &http,
        &url,
        Some("wrong-token"),
        &am_payload("lifeboat", vec![alert]),
    )
    .await;
    assert_eq!(status, 401, "a wrong token is refused");
    let tenant_alerts: Api<ReceivedAlert> = Api::namespaced(client.clone(), TENANT);
    let received = tenant_alerts.list(&ListParams::default()).await.unwrap();
    assert_eq!(received.items.len(), 1, "one ReceivedAlert in {TENANT}");
    let name = received.items[0].metadata.name.clone().unwrap();
    wait_alert_processed(&client, TENANT, &name, &ctl_diag).await;

    // The seed plan and alert, as in ../shared/seed-examples, run to completion.
    cluster.apply(seed_pod()).await;
    create(&client, seed_example("recovery-plan-003.yaml"), "default").await;
    wait_plan_validated(&client, "default", "example-recoveryplan", &ctl_diag).await;
    create(&client, seed_example("received-alert-003.yaml"), "default").await;
    let run_name = naming::run_name("example-recoveryplan", "example-received-alert");
    let run = scenarios::wait_run_finished(&client, "default", &run_name, &ctl_diag).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}\n{}", ctl.diag());
    assert!(
        rs.steps.iter().all(|s| s.phase == StepPhase::Succeeded),
        "{rs:#?}"
    );
    let seed = cluster
        .get("v1", "pods", Some("default"), "my-pod")
        .await
        .unwrap();
    assert_eq!(seed["spec"]["containers"][1]["image"], "example-image:v1");
    let job = Api::<Job>::namespaced(client.clone(), "default")
        .get(&naming::job_name(&run_name, 2))
        .await
        .unwrap();
    assert_eq!(job.status.unwrap().succeeded, Some(1));
    let log = ctl.log_text();
    let forbidden: Vec<&str> = log.lines().filter(|l| l.contains("orbidden")).collect();
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC refused the controller:\n{}",
        forbidden.join("\n")
    );
    ctl.terminate().await;

    // Uninstalled: no lifeboat workload left; the namespace (cluster registrations live
    // there) and the CRDs (Helm never deletes them, nor the recovery records) stay.
    let mut uninstall = helm(&cluster);
    uninstall.args(["uninstall", RELEASE, "--namespace", RELEASE_NS, "--wait"]);
    succeed(uninstall);
    let replica_sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> =
        Api::namespaced(client.clone(), LIFEBOAT_NS);
    eventually("the chart's workload to be gone", || async {
        let selected = ListParams::default().labels(SELECTOR);
        let left = deployments.list(&selected).await.unwrap().items.len()
            + replica_sets.list(&selected).await.unwrap().items.len()
            + pods.list(&selected).await.unwrap().items.len();
        (left == 0).then_some(())
    })
    .await;
    assert!(
        Api::<Namespace>::all(client.clone())
            .get_opt(LIFEBOAT_NS)
            .await
            .unwrap()
            .is_some(),
        "the namespace is kept"
    );
    // Every cluster-scoped object the chart made is gone, and none came back: the
    // aggregation controller must not have recreated the aggregated role as its members
    // were deleted alongside it. The team's own role stays.
    let left = lifeboat_cluster_rbac(&cluster);
    assert!(left.is_empty(), "left after uninstall: {left:?}");
    let mut get = cluster.kubectl();
    get.args(["get", "clusterrole/statefulset-steps", "-o", "name"]);
    assert_eq!(
        succeed(get).trim(),
        "clusterrole.rbac.authorization.k8s.io/statefulset-steps"
    );
}
