//! `lifeboat validate`: exit 0 when clean, 1 with a report naming file, document, step and
//! field when not, 2 when a file cannot be read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lifeboat_testkit::repo_root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn validate(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("validate")
        .args(args)
        .output()
        .expect("run lifeboat validate")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn seed_examples_are_valid() {
    let seeds = repo_root().join("../shared/seed-examples");
    assert!(
        seeds.is_dir(),
        "the seed examples are expected beside the repository at {}",
        seeds.display()
    );
    let out = validate(&[&seeds]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("checked 6 files, 6 lifeboat documents: no problems"),
        "{}",
        text(&out)
    );
}

/// The `*.yaml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every plan in `examples/` (its `*.yaml` files; the folders beside them hold CRDs and
/// Prometheus and Alertmanager configuration) validates, together as `lifeboat validate
/// examples/*.yaml` checks them and each on its own; holds only lifeboat documents (a
/// document whose apiVersion is mistyped would otherwise be skipped as another kind); and
/// is described in `examples/README.md`.
#[test]
fn every_example_plan_is_valid_and_documented() {
    let examples = repo_root().join("examples");
    let readme = std::fs::read_to_string(examples.join("README.md")).expect("examples/README.md");
    let files = yaml_files(&examples);
    let all: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = validate(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "checked {} files, {} lifeboat documents: no problems",
            files.len(),
            files.len()
        )),
        "{}",
        text(&out)
    );
    for file in &files {
        let out = validate(&[file]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            file.display(),
            text(&out)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("lifeboat document") && !stdout.contains(" 0 lifeboat documents"),
            "{} holds no lifeboat document: {stdout}",
            file.display()
        );
        assert!(
            !stdout.contains("skipped"),
            "{} holds documents lifeboat does not check: {stdout}",
            file.display()
        );
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(
            readme.contains(&format!("## `{name}`")),
            "examples/README.md has no section for {name}"
        );
    }
    assert!(
        files.len() >= 5,
        "the FerretDB, CloudNativePG, workload-move and service-switch plans: {files:?}"
    );
}

/// The CRDs shipped for the examples' third-party kinds are CustomResourceDefinitions.
#[test]
fn example_crds_parse_as_custom_resource_definitions() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let files = yaml_files(&repo_root().join("examples/crds"));
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert_eq!(
            name,
            format!("{}.{}", crd.spec.names.plural, crd.spec.group),
            "{}",
            file.display()
        );
        assert_eq!(
            file.file_stem().unwrap().to_string_lossy(),
            name,
            "the file is named after its CRD"
        );
    }
}

const BROKEN: &str = r#"# first document is fine
apiVersion: recovery.elotl.co/v1alpha1
kind: ReceivedAlert
metadata:
  name: fine
spec:
  labels:
    app: my-app
---
apiVersion: recovery.elotl.co/v1alpha1
kind: RecoveryPlan
metadata:
  name: broken-plan
spec:
  alertLabels:
    app: my-app
  steps:
    - type: readField
      readField:
        apiVersion: v1
        resource: pods
        namespace: default
        name: my-pod
        fieldPath: spec.containers[0].image
        outputKey: podImage
    - type: patch
      retries:
        limit: many
      patch:
        apiVersion: v1
        resource: pods
        namespace: default
        name: my-pod
        override:
          fieldPath: spec.containers[1].image
          value:
            raw: "{{ .Values.podImage }}"
---
apiVersion: recovery.elotl.co/v1alpha1
kind: RecoveryPlan
metadata:
  name: bad-field-path
spec:
  alertLabels:
    app: my-app
  steps:
    - type: readField
      title: Read the image
      readField:
        apiVersion: v1
        resource: pods
        namespace: default
        name: my-pod
        fieldPath: spec.containers[
        outputKey: podImage
"#;

#[test]
fn a_broken_plan_is_reported_with_file_document_step_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broken-plan.yaml");
    std::fs::write(&file, BROKEN).expect("write fixture");
    let out = validate(&[&file]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("broken-plan.yaml"))
        .collect();
    assert_eq!(lines.len(), 2, "one line per problem\n{}", text(&out));
    // A type error, found while reading the document into the API types.
    for needle in [
        "document 2",
        "RecoveryPlan/broken-plan",
        "step 2",
        "spec.steps[1].retries.limit",
    ] {
        assert!(
            lines[0].contains(needle),
            "`{needle}` missing from: {}",
            lines[0]
        );
    }
    // A plan-validation error, found by the engine.
    for needle in [
        "document 3",
        "RecoveryPlan/bad-field-path",
        "step 1 \"Read the image\"",
        "spec.steps[0].readField.fieldPath",
        "spec.containers[",
    ] {
        assert!(
            lines[1].contains(needle),
            "`{needle}` missing from: {}",
            lines[1]
        );
    }
    assert!(
        stdout.contains("2 problems"),
        "the summary counts the problems\n{}",
        text(&out)
    );
}

#[test]
fn invalid_yaml_is_a_problem_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yml");
    std::fs::write(
        &file,
        "apiVersion: recovery.elotl.co/v1alpha1\nkind: [oops\n",
    )
    .expect("write fixture");
    let out = validate(&[dir.path()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not valid YAML"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let out = validate(&[Path::new("/nonexistent/lifeboat/plan.yaml")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/lifeboat/plan.yaml"),
        "the error names the file: {}",
        text(&out)
    );
}

/// The engine's catalogue of one-defect plans: the CLI reports every file's own defect.
#[test]
fn a_directory_of_broken_plans_reports_each_defect() {
    let dir = repo_root().join("crates/engine/tests/fixtures/invalid");
    let out = validate(&[&dir]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        let expect = source
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()));
        let file = path.file_name().unwrap().to_string_lossy();
        // The engine's wording, or at least the exact field it names (the CLI words a few
        // document-level problems, such as a wrong apiVersion, itself).
        let expect = expect.trim();
        let field = expect.split(": ").next().unwrap_or(expect);
        let line = report.lines().find(|l| {
            l.contains(file.as_ref())
                && (l.contains(expect) || l.contains(&format!("field {field}")))
        });
        assert!(
            line.is_some(),
            "the report names no problem `{expect}` for {file}:\n{report}"
        );
        checked += 1;
    }
    assert!(
        checked >= 15,
        "only {checked} broken plans in {}",
        dir.display()
    );
}
