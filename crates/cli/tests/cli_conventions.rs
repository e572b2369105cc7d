//! The command-line conventions of kubectl, on the backend `LIFEBOAT_TEST_CLUSTER` chooses:
//! `--kubeconfig` and `--context` choosing between two clusters, `-o json|yaml|name|wide`,
//! the `kubectl lifeboat` plugin name, shell completion and `validate -`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use lifeboat_testkit::TestCluster;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const NS: &str = "ops";

/// A RecoveryRun as a controller would have created it (no controller runs here: listing
/// needs none).
fn run(name: &str) -> Value {
    json!({
        "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"planName": "move-db", "alertSpec": {"name": format!("alert-of-{name}")},
            "steps": [{"type": "readField", "readField": {"apiVersion": "v1",
                "resource": "configmaps", "namespace": NS, "name": "c",
                "fieldPath": "data.x", "outputKey": "x"}}]}
    })
}

/// One kubeconfig holding a context per cluster, named as given; no current context.
fn merged_kubeconfig(dir: &Path, clusters: &[(&str, &TestCluster)]) -> PathBuf {
    let mut merged = json!({"apiVersion": "v1", "kind": "Config",
        "clusters": [], "users": [], "contexts": []});
    for (name, cluster) in clusters {
        let cfg: Value = serde_yaml::from_str(cluster.kubeconfig_yaml()).unwrap();
        let mut c = cfg["clusters"][0].clone();
        c["name"] = json!(name);
        let mut u = cfg["users"][0].clone();
        u["name"] = json!(name);
        merged["clusters"].as_array_mut().unwrap().push(c);
        merged["users"].as_array_mut().unwrap().push(u);
        merged["contexts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": name,
            "context": {"cluster": name, "user": name, "namespace": NS}}));
    }
    let path = dir.join("merged.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&merged).unwrap()).unwrap();
    path
}

async fn exec(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.kill_on_drop(true)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .await
        .unwrap();
    drop(input);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the command finished within 60s")
        .unwrap()
}

/// `lifeboat --kubeconfig KUBECONFIG --context CONTEXT ARGS…`.
async fn in_context(kubeconfig: &str, context: &str, args: &[&str]) -> Output {
    let mut all = vec!["--kubeconfig", kubeconfig, "--context", context];
    all.extend_from_slice(args);
    lifeboat(&all).await
}

async fn lifeboat(args: &[&str]) -> Output {
    lifeboat_with_stdin(args, None).await
}

async fn lifeboat_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifeboat"));
    cmd.args(args);
    exec(cmd, stdin).await
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_and_context_choose_the_cluster_and_output_formats_print_objects() {
    let east = TestCluster::start("east").await;
    let west = TestCluster::start("west").await;
    for (cluster, name) in [(&east, "east-run"), (&west, "west-run")] {
        cluster.create_namespaces(&[NS]).await;
        cluster.apply(run(name)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = merged_kubeconfig(dir.path(), &[("east", &east), ("west", &west)]);
    let kc = kubeconfig.to_str().unwrap();

    // Each context lists its own cluster's runs, in the context's namespace.
    for (context, mine, other) in [
        ("east", "east-run", "west-run"),
        ("west", "west-run", "east-run"),
    ] {
        let out = in_context(kc, context, &["runs", "list"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(stdout(&out).contains(mine), "{context}: {}", text(&out));
        assert!(!stdout(&out).contains(other), "{context}: {}", text(&out));
    }
    // The flags may come after the subcommand too, as with kubectl.
    let out = lifeboat(&[
        "runs",
        "list",
        "-o",
        "name",
        "--context",
        "west",
        "--kubeconfig",
        kc,
    ])
    .await;
    assert_eq!(
        stdout(&out),
        "recoveryrun.recovery.elotl.co/west-run\n",
        "{}",
        text(&out)
    );

    let out = in_context(kc, "east", &["runs", "list", "-n", NS, "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["kind"], "RecoveryRun");
    assert_eq!(list["items"][0]["metadata"]["name"], "east-run");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let out = in_context(kc, "east", &["runs", "show", "east-run", "-o", "yaml"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown: Value = serde_yaml::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown["apiVersion"], "recovery.elotl.co/v1alpha1");
    assert_eq!(shown["spec"]["planName"], "move-db");

    let out = in_context(kc, "east", &["runs", "list", "-o", "wide"]).await;
    let header = stdout(&out).lines().next().unwrap_or_default().to_string();
    for column in ["NAME", "PHASE", "ATTEMPT", "DURATION", "MESSAGE"] {
        assert!(header.contains(column), "{column} missing: {}", text(&out));
    }

    // A context that does not exist is a usage error naming it, not a silent fallback.
    let out = in_context(kc, "north", &["runs", "list"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("north"),
        "{}",
        text(&out)
    );

    // Installed as kubectl-lifeboat on PATH, it is `kubectl lifeboat`.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lifeboat"), bin.join("kubectl-lifeboat"))
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut kubectl = Command::new("kubectl");
    kubectl
        .args([
            "lifeboat",
            "--kubeconfig",
            kc,
            "--context",
            "west",
            "runs",
            "list",
            "-o",
            "name",
        ])
        .env("PATH", path);
    let out = exec(kubectl, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        stdout(&out),
        "recoveryrun.recovery.elotl.co/west-run\n",
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_scripts_and_validate_from_stdin() {
    for (shell, needle) in [
        ("bash", "_lifeboat()"),
        ("zsh", "#compdef lifeboat"),
        ("fish", "complete -c lifeboat"),
    ] {
        let out = lifeboat(&["completion", shell]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let script = stdout(&out);
        assert!(script.contains(needle), "{shell}: {needle} missing");
        for word in ["runs", "kubeconfig", "validate"] {
            assert!(script.contains(word), "{shell}: {word} not completed");
        }
    }

    let seed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/seed-examples/recovery-plan-000.yaml"),
    )
    .expect("the seed examples are in ../shared/seed-examples");
    let out = lifeboat_with_stdin(&["validate", "-"], Some(&seed)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("1 lifeboat document: no problems"),
        "{}",
        text(&out)
    );

    let broken = seed.replace("outputKey: podImage", "outputKey: \"\"");
    assert_ne!(broken, seed, "the seed plan reads into outputKey podImage");
    let out = lifeboat_with_stdin(&["validate", "-"], Some(&broken)).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stdout(&out).contains("outputKey"), "{}", text(&out));
}
