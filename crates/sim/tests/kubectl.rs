//! The real `kubectl` against the simulator: get, describe, create, apply (client- and
//! server-side), patch (json, merge, strategic), delete, wait and get -w, on ConfigMaps,
//! Pods, Jobs, Services, a registered CRD and lifeboat's own CRDs with the seed examples.
//!
//! Every test checks what kubectl prints, not only its exit code. Skipped (with a message)
//! when kubectl is not on the PATH.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lifeboat_sim::SimCluster;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Longest any single kubectl invocation may take before the test fails.
const KUBECTL_DEADLINE: Duration = Duration::from_secs(60);

/// Output of one kubectl run.
struct Out {
    success: bool,
    stdout: String,
    stderr: String,
}

/// A simulated cluster, its kubeconfig and a scratch directory.
struct Env {
    _cluster: SimCluster,
    dir: TempDir,
    kubeconfig: PathBuf,
}

async fn kubectl_on_path() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Start a cluster, or `None` (after saying so) when kubectl is missing.
async fn env(name: &str) -> Option<Env> {
    if !kubectl_on_path().await {
        eprintln!(
            "SKIPPED: kubectl is not on the PATH; the kubectl test suite needs the real client"
        );
        return None;
    }
    let cluster = SimCluster::start(name).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    Some(Env {
        _cluster: cluster,
        dir,
        kubeconfig,
    })
}

impl Env {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", self.dir.path())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, None).await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            use tokio::io::AsyncWriteExt;
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).await.unwrap();
            drop(pipe);
        }
        let output = tokio::time::timeout(KUBECTL_DEADLINE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| {
                panic!("kubectl {args:?} did not finish within {KUBECTL_DEADLINE:?}")
            })
            .unwrap();
        Out {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Run kubectl, require success, return stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.success,
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// Run kubectl, require failure, return stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.success,
            "kubectl {} should have failed, printed:\n{}",
            args.join(" "),
            out.stdout
        );
        out.stderr
    }

    /// `kubectl get … -o json`, parsed.
    async fn get_json(&self, args: &[&str]) -> Value {
        let mut full: Vec<&str> = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "json"]);
        let out = self.ok(&full).await;
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("kubectl {full:?} printed non-JSON ({e}): {out}"))
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The header line and the row starting with `name` of a `kubectl get` table.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

fn header_columns(table: &str) -> String {
    table.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_create_get_describe_patch_apply_delete() {
    let Some(env) = env("kubectl-cm").await else {
        return;
    };
    let file = env.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: haproxy\n  labels:\n    app: lb\ndata:\n  backend: 10.0.0.1\n  haproxy.cfg: |\n    server db 10.0.0.1:5432\n",
    );
    let out = env.ok(&["create", "-f", p(&file)]).await;
    assert_eq!(out.trim(), "configmap/haproxy created");
    let err = env.fails(&["create", "-f", p(&file)]).await;
    assert!(
        err.contains("Error from server (AlreadyExists)")
            && err.contains("configmaps \"haproxy\" already exists"),
        "second create: {err}"
    );

    let table = env.ok(&["get", "configmaps"]).await;
    assert!(header_columns(&table).starts_with("NAME"), "{table}");
    assert!(header_columns(&table).contains("DATA"), "{table}");
    let r = row(&table, "haproxy");
    assert_eq!(
        r.split_whitespace().nth(1),
        Some("2"),
        "DATA column: {table}"
    );

    let got = env
        .ok(&["get", "cm", "haproxy", "-o", "jsonpath={.data.backend}"])
        .await;
    assert_eq!(got, "10.0.0.1");
    let got = env
        .ok(&[
            "get",
            "cm",
            "haproxy",
            "-o",
            "jsonpath={.data.haproxy\\.cfg}",
        ])
        .await;
    assert_eq!(got.trim(), "server db 10.0.0.1:5432");
    let by_label = env.ok(&["get", "cm", "-l", "app=lb", "-o", "name"]).await;
    assert_eq!(by_label.trim(), "configmap/haproxy");
    let none = env.run(&["get", "cm", "-l", "app=other"]).await;
    assert!(
        none.success && none.stderr.contains("No resources found"),
        "{}",
        none.stderr
    );

    let described = env.ok(&["describe", "configmap", "haproxy"]).await;
    for needle in [
        "Name:",
        "haproxy",
        "Namespace:",
        "default",
        "Labels:",
        "app=lb",
        "backend",
        "10.0.0.1",
    ] {
        assert!(
            described.contains(needle),
            "describe lacks {needle:?}:\n{described}"
        );
    }

    // Patches of every type.
    let out = env
        .ok(&[
            "patch",
            "cm",
            "haproxy",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"backend":"10.0.0.2"}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "configmap/haproxy patched");
    let out = env
        .ok(&[
            "patch",
            "cm",
            "haproxy",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/data/backend","value":"10.0.0.3"}]"#,
        ])
        .await;
    assert_eq!(out.trim(), "configmap/haproxy patched");
    env.ok(&[
        "patch",
        "cm",
        "haproxy",
        "--type",
        "strategic",
        "-p",
        r#"{"metadata":{"labels":{"tier":"edge"}}}"#,
    ])
    .await;
    let cm = env.get_json(&["cm", "haproxy"]).await;
    assert_eq!(cm["data"]["backend"], "10.0.0.3");
    assert_eq!(cm["metadata"]["labels"]["tier"], "edge");
    assert_eq!(cm["metadata"]["labels"]["app"], "lb");
    let out = env
        .ok(&[
            "patch",
            "cm",
            "haproxy",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"backend":"10.0.0.3"}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "configmap/haproxy patched (no change)");

    // A failing JSON Patch: kubectl shows the server's Status message.
    let err = env
        .fails(&[
            "patch",
            "cm",
            "haproxy",
            "--type",
            "json",
            "-p",
            r#"[{"op":"test","path":"/data/backend","value":"nope"}]"#,
        ])
        .await;
    // A 422 with details is printed as "The <Kind> "<name>" is invalid: <causes>".
    assert!(
        err.contains("The ConfigMap \"haproxy\" is invalid") && err.contains("test operation"),
        "the Status message is shown: {err}"
    );
    let err = env
        .fails(&[
            "patch",
            "cm",
            "haproxy",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/data/missing/x","value":"1"}]"#,
        ])
        .await;
    assert!(
        err.contains("/data/missing/x"),
        "the failing path is named: {err}"
    );

    // Client-side apply of a changed manifest (a strategic merge patch underneath).
    let changed = env.write(
        "cm2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: haproxy\n  labels:\n    app: lb\ndata:\n  backend: 10.0.0.9\n",
    );
    let out = env.ok(&["apply", "-f", p(&changed)]).await;
    assert!(out.trim() == "configmap/haproxy configured", "{out}");
    let cm = env.get_json(&["cm", "haproxy"]).await;
    assert_eq!(cm["data"]["backend"], "10.0.0.9");
    let out = env.ok(&["apply", "-f", p(&changed)]).await;
    assert_eq!(out.trim(), "configmap/haproxy unchanged");

    // Server-side apply creates and updates.
    let ssa = env.write(
        "ssa.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n",
    );
    let out = env.ok(&["apply", "--server-side", "-f", p(&ssa)]).await;
    assert_eq!(out.trim(), "configmap/ssa serverside-applied");
    let ssa2 = env.write(
        "ssa2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"2\"\n",
    );
    env.ok(&["apply", "--server-side", "-f", p(&ssa2)]).await;
    assert_eq!(
        env.ok(&["get", "cm", "ssa", "-o", "jsonpath={.data.a}"])
            .await,
        "2"
    );

    let out = env.ok(&["delete", "cm", "haproxy"]).await;
    assert_eq!(out.trim(), "configmap \"haproxy\" deleted");
    let err = env.fails(&["get", "cm", "haproxy"]).await;
    assert!(
        err.contains("Error from server (NotFound): configmaps \"haproxy\" not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_strategic_merge_by_container_name_and_json_patch() {
    let Some(env) = env("kubectl-pod").await else {
        return;
    };
    let pod = env.write(
        "pod.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: my-pod
spec:
  containers:
  - name: app
    image: example-image:v1
    env:
    - name: ROLE
      value: primary
  - name: sidecar
    image: sidecar:v1
"#,
    );
    assert_eq!(
        env.ok(&["create", "-f", p(&pod)]).await.trim(),
        "pod/my-pod created"
    );
    let table = env.ok(&["get", "pods"]).await;
    let header = header_columns(&table);
    for col in ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(col), "pod table lacks {col}: {table}");
    }
    row(&table, "my-pod");

    env.ok(&[
        "patch",
        "pod",
        "my-pod",
        "-p",
        r#"{"spec":{"containers":[{"name":"sidecar","image":"sidecar:v2"}]}}"#,
    ])
    .await;
    let images = env
        .ok(&[
            "get",
            "pod",
            "my-pod",
            "-o",
            "jsonpath={.spec.containers[*].image}",
        ])
        .await;
    assert_eq!(
        images, "example-image:v1 sidecar:v2",
        "strategic merge by container name"
    );
    // Of a pod's spec only the images may change: an env change is rejected, as by
    // kube-apiserver.
    let err = env
        .fails(&[
            "patch",
            "pod",
            "my-pod",
            "--type",
            "strategic",
            "-p",
            r#"{"spec":{"containers":[{"name":"app","env":[{"name":"ROLE","value":"standby"}]}]}}"#,
        ])
        .await;
    assert!(
        err.contains("Forbidden: pod updates may not change fields"),
        "{err}"
    );
    let role = env
        .ok(&[
            "get",
            "pod",
            "my-pod",
            "-o",
            "jsonpath={.spec.containers[?(@.name==\"app\")].env[0].value}",
        ])
        .await;
    assert_eq!(role, "primary");

    // The seed's own patch: JSON Patch replace of the second container's image.
    env.ok(&[
        "patch",
        "pod",
        "my-pod",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/containers/1/image","value":"example-image:v1"}]"#,
    ])
    .await;
    let images = env
        .ok(&[
            "get",
            "pod",
            "my-pod",
            "-o",
            "jsonpath={.spec.containers[*].image}",
        ])
        .await;
    assert_eq!(images, "example-image:v1 example-image:v1");

    let described = env.ok(&["describe", "pod", "my-pod"]).await;
    for needle in [
        "Name:",
        "my-pod",
        "Containers:",
        "app:",
        "sidecar:",
        "example-image:v1",
    ] {
        assert!(
            described.contains(needle),
            "describe pod lacks {needle:?}:\n{described}"
        );
    }
    let out = env.ok(&["delete", "pod", "my-pod", "--wait=true"]).await;
    assert_eq!(out.trim(), "pod \"my-pod\" deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_ports_merge_by_port() {
    let Some(env) = env("kubectl-svc").await else {
        return;
    };
    let svc = env.write(
        "svc.yaml",
        r#"apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  selector:
    app: db
  ports:
  - name: pg
    port: 5432
    targetPort: 5432
  - name: metrics
    port: 9187
    targetPort: 9187
"#,
    );
    assert_eq!(
        env.ok(&["apply", "-f", p(&svc)]).await.trim(),
        "service/db created"
    );
    env.ok(&[
        "patch",
        "svc",
        "db",
        "-p",
        r#"{"spec":{"ports":[{"port":5432,"targetPort":6432}]}}"#,
    ])
    .await;
    let ports = env
        .ok(&[
            "get",
            "svc",
            "db",
            "-o",
            "jsonpath={range .spec.ports[*]}{.port}:{.targetPort} {end}",
        ])
        .await;
    assert_eq!(ports.trim(), "5432:6432 9187:9187", "ports merge by port");
    let table = env.ok(&["get", "services"]).await;
    let header = header_columns(&table);
    for col in ["NAME", "TYPE", "CLUSTER-IP", "PORT(S)"] {
        assert!(header.contains(col), "service table lacks {col}: {table}");
    }
    row(&table, "db");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_runs_to_complete_and_kubectl_wait_sees_it() {
    let Some(env) = env("kubectl-job").await else {
        return;
    };
    let job = env.write(
        "job.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: notify
spec:
  backoffLimit: 0
  template:
    spec:
      containers:
      - name: update-notification
        image: busybox
        command: ['sh', '-c', 'echo Updating to image example-image:v1']
      restartPolicy: Never
"#,
    );
    assert_eq!(
        env.ok(&["create", "-f", p(&job)]).await.trim(),
        "job.batch/notify created"
    );
    let out = env
        .ok(&[
            "wait",
            "--for=condition=complete",
            "job/notify",
            "--timeout=60s",
        ])
        .await;
    assert_eq!(out.trim(), "job.batch/notify condition met");
    let table = env.ok(&["get", "jobs"]).await;
    let header = header_columns(&table);
    for col in ["NAME", "STATUS", "COMPLETIONS"] {
        assert!(header.contains(col), "job table lacks {col}: {table}");
    }
    let r = row(&table, "notify");
    assert!(r.contains("1/1"), "completions: {table}");
    let job = env.get_json(&["job", "notify"]).await;
    assert_eq!(job["status"]["succeeded"], 1, "{job}");

    // A Job whose pod fails (the simulator's outcome annotation) ends Failed.
    let failing = env.write(
        "failing.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: broken
  annotations:
    sim.lifeboat.dev/outcome: Fail
spec:
  backoffLimit: 0
  template:
    spec:
      containers:
      - name: c
        image: busybox
      restartPolicy: Never
"#,
    );
    env.ok(&["create", "-f", p(&failing)]).await;
    let out = env
        .ok(&[
            "wait",
            "--for=condition=failed",
            "job/broken",
            "--timeout=60s",
        ])
        .await;
    assert_eq!(out.trim(), "job.batch/broken condition met");
    let reason = env
        .ok(&[
            "get",
            "job",
            "broken",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Failed\")].reason}",
        ])
        .await;
    assert_eq!(reason, "BackoffLimitExceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_streams_changes() {
    let Some(env) = env("kubectl-watch").await else {
        return;
    };
    // (Imperative `kubectl create configmap` sends protobuf, which the simulator does not
    // decode; manifests are sent as JSON.)
    let first = env.write(
        "first.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: first\ndata:\n  a: \"1\"\n",
    );
    let second = env.write(
        "second.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: second\ndata:\n  b: \"2\"\n",
    );
    env.ok(&["create", "-f", p(&first)]).await;
    let mut child = env
        .command(&["get", "configmaps", "--watch", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let next_line = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| {
        tokio::time::timeout(KUBECTL_DEADLINE, lines.next_line())
            .await
            .expect("kubectl get -w printed nothing before the deadline")
            .unwrap()
            .expect("kubectl get -w ended early")
    };
    // The initial list (kube-root-ca.crt may also be there).
    loop {
        let line = next_line(&mut lines).await;
        if line == "configmap/first" {
            break;
        }
    }
    env.ok(&["create", "-f", p(&second)]).await;
    loop {
        let line = next_line(&mut lines).await;
        if line == "configmap/second" {
            break;
        }
        assert!(
            line.starts_with("configmap/"),
            "unexpected watch line {line:?}"
        );
    }
    child.kill().await.unwrap();
}

const WIDGET_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
    plural: widgets
    singular: widget
    shortNames: [wd]
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Color
      type: string
      jsonPath: .spec.color
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: integer
                minimum: 1
              color:
                type: string
                enum: [red, blue]
              tags:
                type: array
                items:
                  type: string
          status:
            type: object
            properties:
              ready:
                type: boolean
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resource_definition_and_its_objects() {
    let Some(env) = env("kubectl-crd").await else {
        return;
    };
    let crd = env.write("crd.yaml", WIDGET_CRD);
    let out = env.ok(&["apply", "-f", p(&crd)]).await;
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    );
    let out = env
        .ok(&[
            "wait",
            "--for=condition=established",
            "crd/widgets.example.com",
            "--timeout=30s",
        ])
        .await;
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met"
    );

    let w = env.write(
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n  color: red\n  tags: [a, b]\n  unknown: pruned\n",
    );
    // kubectl asks for strict field validation by default: unknown fields are an error…
    let err = env.fails(&["create", "-f", p(&w)]).await;
    assert!(
        err.contains("strict decoding error: unknown field \"spec.unknown\""),
        "{err}"
    );
    // …and without it they are pruned.
    assert_eq!(
        env.ok(&["create", "--validate=false", "-f", p(&w)])
            .await
            .trim(),
        "widget.example.com/w1 created"
    );
    let obj = env.get_json(&["widget", "w1"]).await;
    assert!(
        obj["spec"].get("unknown").is_none(),
        "unknown field pruned: {obj}"
    );
    assert_eq!(obj["spec"]["tags"], serde_json::json!(["a", "b"]));

    let table = env.ok(&["get", "wd"]).await;
    // Exactly the declared columns: no AGE, since the CRD declares its own columns.
    let header = header_columns(&table);
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns,
        ["NAME", "SIZE", "COLOR"],
        "printer columns: {table}"
    );
    let r = row(&table, "w1");
    assert!(r.contains(" 3 ") && r.contains("red"), "{table}");

    env.ok(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"tags":["c"]}}"#,
    ])
    .await;
    env.ok(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/size","value":5}]"#,
    ])
    .await;
    let obj = env.get_json(&["widget", "w1"]).await;
    assert_eq!(
        obj["spec"]["tags"],
        serde_json::json!(["c"]),
        "merge patch replaces lists"
    );
    assert_eq!(obj["spec"]["size"], 5);

    let err = env
        .fails(&[
            "patch",
            "widget",
            "w1",
            "--type",
            "strategic",
            "-p",
            r#"{"spec":{"size":6}}"#,
        ])
        .await;
    assert!(
        err.contains("UnsupportedMediaType") || err.contains("unknown format"),
        "strategic merge patch on a custom resource is refused (415): {err}"
    );

    let err = env
        .fails(&[
            "patch",
            "widget",
            "w1",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"color":"green","size":0}}"#,
        ])
        .await;
    assert!(err.contains("The Widget \"w1\" is invalid"), "{err}");
    assert!(
        err.contains(
            "spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\""
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
        ),
        "{err}"
    );

    let bad = env.write(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  color: blue\n",
    );
    let err = env.fails(&["create", "-f", p(&bad)]).await;
    assert!(err.contains("spec.size: Required value"), "{err}");

    let out = env
        .ok(&["apply", "--server-side", "--validate=false", "-f", p(&w)])
        .await;
    assert_eq!(out.trim(), "widget.example.com/w1 serverside-applied");
    assert_eq!(
        env.ok(&["get", "widget", "w1", "-o", "jsonpath={.spec.size}"])
            .await,
        "3"
    );

    assert_eq!(
        env.ok(&["delete", "widget", "w1"]).await.trim(),
        "widget.example.com \"w1\" deleted"
    );
    let err = env.fails(&["get", "widget", "w1"]).await;
    assert!(
        err.contains("widgets.example.com \"w1\" not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifeboat_crds_and_seed_examples_apply_verbatim() {
    let Some(env) = env("kubectl-lifeboat").await else {
        return;
    };
    let crds = env.write("crds.yaml", &lifeboat_api::crds::to_yaml().unwrap());
    let out = env.ok(&["apply", "-f", p(&crds)]).await;
    for plural in ["receivedalerts", "recoveryplans", "recoveryruns"] {
        assert!(
            out.contains(&format!(
                "customresourcedefinition.apiextensions.k8s.io/{plural}.recovery.elotl.co created"
            )),
            "{out}"
        );
    }
    env.ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/receivedalerts.recovery.elotl.co",
        "crd/recoveryplans.recovery.elotl.co",
        "crd/recoveryruns.recovery.elotl.co",
        "crd/recoveryapprovals.recovery.elotl.co",
    ])
    .await;

    let seeds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed-examples");
    for (file, expected) in [
        (
            "received-alert-003.yaml",
            "receivedalert.recovery.elotl.co/example-received-alert created",
        ),
        (
            "recovery-plan-003.yaml",
            "recoveryplan.recovery.elotl.co/example-recoveryplan created",
        ),
        (
            "recovery-run-003.yaml",
            "recoveryrun.recovery.elotl.co/example-recoveryrun created",
        ),
        (
            "received-alert-000.yaml",
            "receivedalert.recovery.elotl.co/example-received-alert configured",
        ),
        (
            "recovery-plan-000.yaml",
            "recoveryplan.recovery.elotl.co/example-recoveryplan unchanged",
        ),
        (
            "recovery-run-000.yaml",
            // Only the (ignored) status differs, but kubectl records the new manifest.
            "recoveryrun.recovery.elotl.co/example-recoveryrun configured",
        ),
    ] {
        let path = seeds.join(file);
        let out = env.ok(&["apply", "-f", p(&path)]).await;
        assert_eq!(out.trim(), expected, "kubectl apply -f {file}");
    }

    // Nothing of the seed plan was pruned: value.raw and the job template are intact.
    let plan = env
        .get_json(&["recoveryplan", "example-recoveryplan"])
        .await;
    let steps = &plan["spec"]["steps"];
    assert_eq!(
        steps[1]["patch"]["override"]["value"]["raw"],
        "{{ .Values.podImage }}"
    );
    assert_eq!(
        steps[2]["job"]["template"]["spec"]["containers"][0]["command"],
        serde_json::json!(["sh", "-c", "echo Updating to image {{ .Values.podImage }}"])
    );
    assert_eq!(
        steps[2]["job"]["template"]["spec"]["restartPolicy"],
        "OnFailure"
    );

    // A decision on a run's approval step, as an approver writes it with kubectl.
    let approval = env.write(
        "approval.yaml",
        "apiVersion: recovery.elotl.co/v1alpha1\nkind: RecoveryApproval\nmetadata:\n  name: example-approval\n  namespace: default\nspec:\n  runName: example-recoveryrun\n  step: 0\n  decision: Approve\n  approver: admin\n",
    );
    let out = env.ok(&["create", "-f", p(&approval)]).await;
    assert_eq!(
        out.trim(),
        "recoveryapproval.recovery.elotl.co/example-approval created"
    );

    // One category lists every kind.
    let all = env.ok(&["get", "recovery"]).await;
    for name in [
        "receivedalert.recovery.elotl.co/example-received-alert",
        "recoveryplan.recovery.elotl.co/example-recoveryplan",
        "recoveryrun.recovery.elotl.co/example-recoveryrun",
        "recoveryapproval.recovery.elotl.co/example-approval",
    ] {
        assert!(
            all.contains(name),
            "kubectl get recovery lacks {name}:\n{all}"
        );
    }

    // Printer columns of every kind, as declared in its CRD, by short name too.
    for crd in lifeboat_api::crds::all() {
        let plural = crd.spec.names.plural.clone();
        let short = crd.spec.names.short_names.clone().unwrap_or_default();
        let columns = crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap_or_default();
        for resource in std::iter::once(plural.clone()).chain(short) {
            let table = env.ok(&["get", &resource]).await;
            let wide = env.ok(&["get", &resource, "-o", "wide"]).await;
            let header = header_columns(&table);
            let wide_header = header_columns(&wide);
            assert!(header.starts_with("NAME"), "{resource}: {table}");
            for col in &columns {
                let name = col.name.to_uppercase();
                let priority = col.priority.unwrap_or(0);
                assert_eq!(
                    header.contains(name.as_str()),
                    priority == 0,
                    "kubectl get {resource}: column {name} (priority {priority}) shown only when priority is 0:\n{table}"
                );
                assert!(
                    wide_header.contains(name.as_str()),
                    "kubectl get {resource} -o wide lacks column {name}:\n{wide}"
                );
            }
            assert_eq!(
                table.lines().count(),
                2,
                "one object of {resource}:\n{table}"
            );
        }
    }

    // A plan the schema rejects: the API server's field error is shown.
    let bad = env.write(
        "bad-plan.yaml",
        "apiVersion: recovery.elotl.co/v1alpha1\nkind: RecoveryPlan\nmetadata:\n  name: bad\nspec:\n  alertLabels:\n    app: x\n  steps:\n  - type: foo\n",
    );
    let err = env.fails(&["apply", "-f", p(&bad)]).await;
    assert!(
        err.contains("spec.steps[0].type: Unsupported value: \"foo\": supported values: \"readField\", \"patch\", \"job\", \"wait\", \"check\", \"approval\", \"notify\""),
        "{err}"
    );

    // Merge patch on a custom resource, as real plans do; strategic is refused.
    env.ok(&[
        "patch",
        "rp",
        "example-recoveryplan",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ])
    .await;
    let suspended = env
        .ok(&[
            "get",
            "rp",
            "example-recoveryplan",
            "-o",
            "jsonpath={.spec.suspend}",
        ])
        .await;
    assert_eq!(suspended, "true");
    let err = env
        .fails(&[
            "patch",
            "rp",
            "example-recoveryplan",
            "-p",
            r#"{"spec":{"suspend":false}}"#,
        ])
        .await;
    assert!(
        err.contains("unknown format") || err.contains("UnsupportedMediaType"),
        "{err}"
    );

    let out = env
        .ok(&["delete", "-f", p(&seeds.join("recovery-run-003.yaml"))])
        .await;
    assert_eq!(
        out.trim(),
        "recoveryrun.recovery.elotl.co \"example-recoveryrun\" deleted"
    );
}
