//! lifeboat as a user installs it, on a real control plane (`testing/kube`: etcd,
//! kube-apiserver, kube-controller-manager and its job controller, a node agent): the
//! shipped manifests applied with kubectl, the controller running with a token of its own
//! ServiceAccount and nothing but the shipped RBAC.
//!
//! These tests need the real server (TokenRequest, RBAC, the job controller), so they run
//! only with `LIFEBOAT_TEST_CLUSTER=kube`; `scripts/test.sh` runs them so, and the
//! simulator pass excludes this binary by name (`.config/nextest.toml`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lifeboat_testkit::repo_root;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use lifeboat_api::{RecoveryRun, RunPhase, StepPhase};
use lifeboat_operator::naming;
use lifeboat_testkit::scenarios::{self, SEED_ALERT, SEED_PLAN, create, seed_pod};
use lifeboat_testkit::wait::wait_plan_validated;
use lifeboat_testkit::{Backend, ControllerProcess, LIFEBOAT_NS, TestCluster, yaml};
use serde_json::{Value, json};

/// A real control plane; this binary is about the real server, so any other backend is a
/// failure, not a skip.
async fn real_cluster(name: &str) -> TestCluster {
    assert_eq!(
        Backend::from_env(),
        Backend::Kube,
        "tests/real_control_plane.rs needs {}=kube (scripts/test.sh sets it)",
        Backend::ENV
    );
    TestCluster::start_empty(name, Backend::Kube).await
}

/// Runs `cmd`, fails with its output unless it succeeds, returns its stdout.
fn run(mut cmd: Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `kubectl kustomize deploy | kubectl apply -f -`, then waits until the CRDs are served.
fn apply_shipped_manifests(cluster: &TestCluster) {
    let kubeconfig = cluster.kubeconfig().display().to_string();
    let deploy = repo_root().join("deploy").display().to_string();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "set -e; kubectl kustomize \"$1\" | kubectl --kubeconfig \"$2\" apply -f -",
        "sh",
        &deploy,
        &kubeconfig,
    ]);
    run(cmd);
    let mut wait = cluster.kubectl();
    wait.args([
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/receivedalerts.recovery.elotl.co",
        "crd/recoveryplans.recovery.elotl.co",
        "crd/recoveryruns.recovery.elotl.co",
        "crd/recoveryapprovals.recovery.elotl.co",
    ]);
    run(wait);
}

/// A kubeconfig for the same server that authenticates with a fresh token of the
/// ServiceAccount `namespace/name` (TokenRequest, as a projected token would be).
fn sa_kubeconfig(cluster: &TestCluster, namespace: &str, name: &str) -> PathBuf {
    let mut cmd = cluster.kubectl();
    cmd.args(["create", "token", name, "-n", namespace, "--duration=1h"]);
    let token = run(cmd).trim().to_string();
    let mut kc: Value = serde_yaml::from_str(cluster.kubeconfig_yaml()).unwrap();
    let users = kc["users"].as_array_mut().unwrap();
    assert_eq!(users.len(), 1, "the admin kubeconfig has one user");
    users[0]["user"] = json!({"token": token});
    let path = cluster.dir().join(format!("{namespace}-{name}.kubeconfig"));
    std::fs::write(&path, serde_yaml::to_string(&kc).unwrap()).unwrap();
    path
}

/// The shipped manifests applied, and `lifeboat controller` running as its ServiceAccount
/// (leader election on, as deployed).
async fn installed(name: &str) -> (TestCluster, ControllerProcess) {
    let cluster = real_cluster(name).await;
    apply_shipped_manifests(&cluster);
    let kubeconfig = sa_kubeconfig(&cluster, LIFEBOAT_NS, "lifeboat-controller");
    let ctl = ControllerProcess::start(
        Path::new(env!("CARGO_BIN_EXE_lifeboat")),
        &kubeconfig,
        cluster.dir(),
        "lifeboat-0",
        &["--no-webhook", "--lease-duration", "4s"],
    )
    .await;
    (cluster, ctl)
}

fn assert_no_forbidden(ctl: &ControllerProcess) {
    let log = ctl.log_text();
    let forbidden: Vec<&str> = log.lines().filter(|l| l.contains("orbidden")).collect();
    assert!(
        forbidden.is_empty(),
        "the shipped RBAC refused the controller:\n{}",
        forbidden.join("\n")
    );
}

#[tokio::test]
async fn crds_and_seed_examples_apply_with_kubectl_and_read_back_unpruned() {
    let cluster = real_cluster("seeds").await;
    let mut apply = cluster.kubectl();
    apply
        .args(["apply", "-f"])
        .arg(repo_root().join("deploy/crds"));
    run(apply);
    let mut wait = cluster.kubectl();
    wait.args([
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "--all",
    ]);
    run(wait);

    let seeds = repo_root().join("../shared/seed-examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&seeds)
        .unwrap_or_else(|e| panic!("{}: {e}", seeds.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        6,
        "the six seed examples in {}",
        seeds.display()
    );
    for file in &files {
        let sent: Value = yaml(&std::fs::read_to_string(file).unwrap());
        // Each seed pair reuses names; a namespace per file keeps them apart.
        let ns = file.file_stem().unwrap().to_str().unwrap().to_string();
        cluster.create_namespaces(&[&ns]).await;
        let mut apply = cluster.kubectl();
        apply.args(["apply", "-n", &ns, "-f"]).arg(file);
        run(apply);
        let kind = sent["kind"].as_str().unwrap().to_ascii_lowercase();
        let name = sent["metadata"]["name"].as_str().unwrap();
        let mut get = cluster.kubectl();
        get.args(["get", "-n", &ns, &kind, name, "-o", "json"]);
        let stored: Value = serde_json::from_str(&run(get)).unwrap();
        assert_eq!(
            stored["spec"],
            sent["spec"],
            "{}: the spec must read back exactly as sent (nothing pruned or defaulted away)",
            file.display()
        );
    }

    // value.raw keeps any JSON shape: a bool, a string and an object, through kubectl.
    cluster.create_namespaces(&["shapes"]).await;
    for (i, raw) in [json!(true), json!("text"), json!({"a": {"b": [1, 2]}})]
        .into_iter()
        .enumerate()
    {
        let mut plan = yaml(SEED_PLAN);
        plan["metadata"]["name"] = json!(format!("raw-{i}"));
        plan["metadata"]["namespace"] = json!("shapes");
        plan["spec"]["steps"][1]["patch"]["override"]["value"]["raw"] = raw.clone();
        let file = cluster.dir().join(format!("raw-{i}.json"));
        std::fs::write(&file, serde_json::to_string(&plan).unwrap()).unwrap();
        let mut apply = cluster.kubectl();
        apply.args(["apply", "-f"]).arg(&file);
        run(apply);
        let stored = cluster
            .get(
                "recovery.elotl.co/v1alpha1",
                "recoveryplans",
                Some("shapes"),
                &format!("raw-{i}"),
            )
            .await
            .unwrap();
        assert_eq!(
            stored["spec"]["steps"][1]["patch"]["override"]["value"]["raw"],
            raw
        );
        assert_eq!(
            stored["spec"]["steps"][2]["job"]["template"],
            plan["spec"]["steps"][2]["job"]["template"],
            "the job template is kept whole"
        );
    }
}

#[tokio::test]
async fn seed_plan_completes_with_only_the_shipped_rbac_and_the_real_job_controller() {
    let (cluster, ctl) = installed("home").await;
    cluster.apply(seed_pod()).await;
    let client = cluster.client();
    create(&client, yaml(SEED_PLAN), "default").await;
    // Alerts match the plans the controller knows: wait until it has seen this one.
    wait_plan_validated(&client, "default", "example-recoveryplan", &|| ctl.diag()).await;
    create(&client, yaml(SEED_ALERT), "default").await;

    let run_name = naming::run_name("example-recoveryplan", "example-received-alert");
    let run = scenarios::wait_run_finished(&client, "default", &run_name, &|| ctl.diag()).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}\n{}", ctl.diag());
    assert_eq!(rs.values["podImage"], "example-image:v1");
    assert!(
        rs.steps.iter().all(|s| s.phase == StepPhase::Succeeded),
        "{rs:#?}"
    );

    let pod = cluster
        .get("v1", "pods", Some("default"), "my-pod")
        .await
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "example-image:v1");
    // The Job was run to completion by kube-controller-manager's job controller.
    let job = Api::<Job>::namespaced(client.clone(), "default")
        .get(&naming::job_name(&run_name, 2))
        .await
        .unwrap();
    let status = job.status.unwrap();
    assert_eq!(status.succeeded, Some(1), "{status:?}");
    assert!(
        status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True"),
        "the job controller marks the Job Complete"
    );
    assert_no_forbidden(&ctl);
    ctl.terminate().await;
}

#[tokio::test]
async fn a_failed_job_step_is_retried_with_only_the_shipped_rbac() {
    let (cluster, ctl) = installed("home").await;
    let client = cluster.client();
    let steps = json!([{"type": "job", "retries": {"limit": 1, "backoff": "100ms"}, "job": {"template": {"spec": {
        "containers": [{"name": "fail", "image": "busybox", "command": ["sh", "-c", "exit 1"]}],
        "restartPolicy": "Never"}}}}]);
    let mut plan = scenarios::plan("flaky", json!({"app": "db"}), steps);
    // One pod per attempt: the real job controller fails the Job after it.
    plan["spec"]["steps"][0]["job"]["backoffLimit"] = json!(0);
    create(&client, plan, "default").await;
    wait_plan_validated(&client, "default", "flaky", &|| ctl.diag()).await;
    create(
        &client,
        scenarios::alert("down", json!({"app": "db"})),
        "default",
    )
    .await;

    let run_name = naming::run_name("flaky", "down");
    let run = scenarios::wait_run_finished(&client, "default", &run_name, &|| ctl.diag()).await;
    let rs = run.status.unwrap();
    assert_eq!(rs.phase, RunPhase::Failed, "{rs:#?}\n{}", ctl.diag());
    let step = &rs.steps[0];
    assert_eq!(step.phase, StepPhase::Failed);
    assert_eq!(
        step.attempts, 2,
        "one retry after the first failure: {step:#?}"
    );
    let msg = step.message.clone().unwrap_or_default();
    assert!(!msg.to_ascii_lowercase().contains("forbidden"), "{msg}");
    assert_no_forbidden(&ctl);
    ctl.terminate().await;
}

#[tokio::test]
async fn steps_impersonate_the_plans_service_account_with_only_the_shipped_rbac() {
    let (cluster, ctl) = installed("home").await;
    cluster.apply(seed_pod()).await;
    let client = cluster.client();
    for sa in ["allowed", "denied"] {
        cluster
            .apply(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": sa, "namespace": "default"}}))
            .await;
    }
    let allowed = "system:serviceaccount:default:allowed";
    let denied = "system:serviceaccount:default:denied";
    cluster
        .allow(allowed, &["get", "patch"], "", "pods", Some("default"))
        .await;
    cluster
        .allow(denied, &["get"], "", "pods", Some("default"))
        .await;

    for (sa, labels) in [
        ("allowed", json!({"team": "a"})),
        ("denied", json!({"team": "b"})),
    ] {
        let mut plan = scenarios::plan(sa, labels.clone(), scenarios::pod_steps());
        plan["spec"]["serviceAccountName"] = json!(sa);
        create(&client, plan, "default").await;
        wait_plan_validated(&client, "default", sa, &|| ctl.diag()).await;
        create(
            &client,
            scenarios::alert(&format!("alert-{sa}"), labels),
            "default",
        )
        .await;
    }

    let ok = naming::run_name("allowed", "alert-allowed");
    let rs = scenarios::wait_run_finished(&client, "default", &ok, &|| ctl.diag())
        .await
        .status
        .unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}\n{}", ctl.diag());

    let refused = naming::run_name("denied", "alert-denied");
    let rs = scenarios::wait_run_finished(&client, "default", &refused, &|| ctl.diag())
        .await
        .status
        .unwrap();
    assert_eq!(rs.phase, RunPhase::Failed, "{rs:#?}");
    assert_eq!(
        rs.steps[0].phase,
        StepPhase::Succeeded,
        "the account may read"
    );
    let msg = rs.steps[1].message.clone().unwrap();
    assert!(
        msg.contains("forbidden") && msg.contains(denied),
        "a clear Forbidden naming the account: {msg}"
    );
    ctl.terminate().await;
}

#[tokio::test]
async fn kube_up_serves_each_named_cluster_until_terminated() {
    assert_eq!(
        Backend::from_env(),
        Backend::Kube,
        "needs {}=kube",
        Backend::ENV
    );
    let dir = tempfile::tempdir().unwrap();
    let mut up = tokio::process::Command::new("bash")
        .arg(repo_root().join("scripts/kube-up.sh"))
        .arg("--dir")
        .arg(dir.path())
        .args(["east", "west"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // kube-up prints one line per ready cluster, then "serving 2 cluster(s)".
    let stdout = up.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let mut printed = Vec::new();
    let serving = tokio::time::timeout(std::time::Duration::from_secs(180), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push(line.clone());
            if line.starts_with("serving 2 cluster(s)") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        serving,
        Ok(true),
        "kube-up did not report both clusters: {printed:?}"
    );
    for name in ["east", "west"] {
        let kubeconfig = dir.path().join(format!("{name}.kubeconfig"));
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&kubeconfig).args([
            "get",
            "node",
            &format!("node-{name}"),
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        assert_eq!(run(cmd), "True", "{name}'s node is Ready");
    }
    let pid = nix::unistd::Pid::from_raw(up.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), up.wait())
        .await
        .expect("kube-up did not stop within 60s of SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(143), "kube-up exits as terminated");
    for name in ["east", "west"] {
        assert!(
            !dir.path().join(format!("{name}.kubeconfig")).exists()
                && !dir.path().join(format!("{name}.state")).exists(),
            "{name}'s kubeconfig and state are removed on stop"
        );
    }
}

/// `kubectl create -f` of `obj` as the user of `kubeconfig` (server-side dry run if asked).
fn kubectl_create(kubeconfig: &Path, obj: &Value, dry_run: bool) -> std::process::Output {
    let file = kubeconfig.with_extension(format!(
        "{}.json",
        obj["metadata"]["name"].as_str().unwrap()
    ));
    std::fs::write(&file, serde_json::to_vec(obj).unwrap()).unwrap();
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).arg("create");
    if dry_run {
        cmd.arg("--dry-run=server");
    }
    cmd.arg("-f").arg(&file).output().unwrap()
}

/// `lifeboat ARGS…` as the user of `kubeconfig`.
fn lifeboat_as(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap()
}

fn approval(name: &str, run: &str, approver: &str) -> Value {
    json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryApproval",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"runName": run, "step": 0, "decision": "Approve", "approver": approver}})
}

#[tokio::test]
async fn approvals_need_rbac_the_callers_own_identity_and_distinct_approvers() {
    let (cluster, ctl) = installed("home").await;
    cluster.apply(seed_pod()).await;
    let client = cluster.client();
    let user = |sa: &str| format!("system:serviceaccount:default:{sa}");
    for sa in ["alice", "bob", "carol"] {
        cluster
            .apply(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": sa, "namespace": "default"}}))
            .await;
    }
    // alice and bob are on call (the shipped ClusterRole, bound in the runs' namespace);
    // carol is not.
    cluster
        .apply(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "oncall-approvers", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "lifeboat-approver"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "alice", "namespace": "default"},
                {"kind": "ServiceAccount", "name": "bob", "namespace": "default"}]}),
        )
        .await;
    for sa in ["alice", "bob"] {
        cluster
            .wait_allowed(
                &user(sa),
                "create",
                "recovery.elotl.co",
                "recoveryapprovals",
                Some("default"),
            )
            .await;
    }
    let [alice, bob, carol] =
        ["alice", "bob", "carol"].map(|sa| sa_kubeconfig(&cluster, "default", sa));

    let mut steps = vec![
        json!({"type": "approval", "title": "Two on-call engineers agree",
        "approval": {"requiredApprovals": 2, "message": "the primary is down; fail over?"}}),
    ];
    steps.extend(scenarios::pod_steps().as_array().unwrap().iter().cloned());
    create(
        &client,
        scenarios::plan("gated", json!({"gate": "two"}), Value::Array(steps)),
        "default",
    )
    .await;
    wait_plan_validated(&client, "default", "gated", &|| ctl.diag()).await;
    create(
        &client,
        scenarios::alert("gate", json!({"gate": "two"})),
        "default",
    )
    .await;
    let run_name = naming::run_name("gated", "gate");
    lifeboat_testkit::wait::wait_for_state(
        Api::<RecoveryRun>::namespaced(client.clone(), "default"),
        &run_name,
        "run not waiting for approval",
        |r: Option<&RecoveryRun>| {
            r.and_then(|r| r.status.as_ref())
                .is_some_and(|s| s.phase == RunPhase::WaitingForApproval)
        },
        &|| ctl.diag(),
    )
    .await;

    // alice cannot approve in bob's name: the admission policy compares the claimed
    // approver with the user the API server authenticated. (The policy is loaded
    // asynchronously after `kubectl apply`: wait until a server-side dry run is refused.)
    let forged = approval("forged", &run_name, &user("bob"));
    lifeboat_testkit::wait::eventually("the approver-identity policy in force", || async {
        (!kubectl_create(&alice, &forged, true).status.success()).then_some(())
    })
    .await;
    let out = kubectl_create(&alice, &forged, false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a forged approval was admitted");
    assert!(
        err.contains(&format!(
            "spec.approver must be the requesting user {}, not {}",
            user("alice"),
            user("bob")
        )),
        "refused by the shipped policy, naming both: {err}"
    );

    // carol has no RBAC on approvals: neither the CLI nor kubectl lets her decide.
    let out = lifeboat_as(&carol, &["approve", &run_name, "-n", "default"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("forbidden"), "{err}");
    let out = kubectl_create(&carol, &approval("carol", &run_name, &user("carol")), false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("forbidden") && err.contains("recoveryapprovals"),
        "{err}"
    );

    // Two distinct approvers are needed: alice, then bob.
    for (kc, sa) in [(&alice, "alice"), (&bob, "bob")] {
        let out = lifeboat_as(kc, &["approve", &run_name, "-n", "default", "--reason", sa]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains(&format!("as {}", user(sa))),
            "{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rs = scenarios::wait_run_finished(&client, "default", &run_name, &|| ctl.diag())
        .await
        .status
        .unwrap();
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}\n{}", ctl.diag());
    // Creation times have whole seconds: two decisions in one second are in name order.
    let mut approvers: Vec<&str> = rs.steps[0]
        .approvals
        .iter()
        .map(|a| a.approver.as_str())
        .collect();
    approvers.sort_unstable();
    assert_eq!(approvers, [user("alice"), user("bob")], "{rs:#?}");
    let msg = rs.steps[0].message.clone().unwrap_or_default();
    assert!(msg.contains("(2 of 2 required)"), "{msg}");
    let pod = cluster
        .get("v1", "pods", Some("default"), "my-pod")
        .await
        .unwrap();
    assert_eq!(pod["spec"]["containers"][1]["image"], "example-image:v1");
    assert_no_forbidden(&ctl);
    ctl.terminate().await;
}
