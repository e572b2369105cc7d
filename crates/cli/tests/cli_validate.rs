//! `lifeboat validate`: exit 0 when clean, 1 with a report naming file, document, step and
//! field when not, 2 when a file cannot be read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

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

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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

#[test]
fn shipped_examples_are_valid() {
    let out = validate(&[&repo_root().join("examples")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
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
