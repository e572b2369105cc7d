//! Plan files: the seed examples and the valid fixtures validate clean; every invalid
//! fixture yields exactly the one problem its `# expect:` comment names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lifeboat_engine::validate::{ValidationOptions, check_documents, check_documents_with};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn assert_clean(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let reports = check_documents(&text);
    assert!(!reports.is_empty(), "{}: no document found", path.display());
    for r in &reports {
        let problems: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            problems.is_empty(),
            "{} document {} ({:?}) should be valid, got {problems:#?}",
            path.display(),
            r.index,
            r.kind
        );
    }
}

#[test]
fn seed_examples_validate_clean() {
    let dir = manifest_dir().join("../../../shared/seed-examples");
    let files = yaml_files(&dir);
    assert!(
        files.len() >= 6,
        "expected the six seed examples in {}",
        dir.display()
    );
    for f in files {
        assert_clean(&f);
    }
}

#[test]
fn valid_fixtures_validate_clean() {
    let files = yaml_files(&manifest_dir().join("tests/fixtures/valid"));
    assert!(files.len() >= 6, "valid fixtures missing");
    for f in files {
        assert_clean(&f);
    }
}

#[test]
fn invalid_fixtures_yield_exactly_the_expected_problem() {
    let files = yaml_files(&manifest_dir().join("tests/fixtures/invalid"));
    assert!(
        files.len() >= 15,
        "expected at least 15 invalid fixtures, found {}",
        files.len()
    );
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} must start with '# expect: '", f.display()))
            .trim();
        let problems: Vec<String> = check_documents(&text)
            .into_iter()
            .flat_map(|r| r.problems)
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            problems.len(),
            1,
            "{}: expected exactly one problem ({expect:?}), got {problems:#?}",
            f.display()
        );
        assert!(
            problems[0].contains(expect),
            "{}: problem {:?} does not contain {expect:?}",
            f.display(),
            problems[0]
        );
    }
}

#[test]
fn unknown_cluster_is_reported_when_clusters_are_known() {
    let text = std::fs::read_to_string(
        manifest_dir().join("tests/fixtures/valid/merge-patch-custom-resource.yaml"),
    )
    .unwrap();
    let known: BTreeSet<String> = ["cluster-a".to_string()].into_iter().collect();
    let opts = ValidationOptions {
        known_clusters: Some(&known),
    };
    let problems: Vec<String> = check_documents_with(&text, &opts)
        .into_iter()
        .flat_map(|r| r.problems)
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        problems,
        vec![
            "spec.steps[0].cluster: unknown cluster \"cluster-b\" (registered: cluster-a)"
                .to_string()
        ]
    );
    let known: BTreeSet<String> = ["cluster-b".to_string()].into_iter().collect();
    let opts = ValidationOptions {
        known_clusters: Some(&known),
    };
    assert!(
        check_documents_with(&text, &opts)
            .iter()
            .all(|r| r.is_valid())
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let text = r#"
apiVersion: recovery.elotl.co/v1alpha1
kind: RecoveryPlan
metadata: {name: many}
spec:
  alertLabels: {}
  cooldown: soon
  steps:
  - type: readField
    readField: {apiVersion: "", resource: pods, name: p, fieldPath: "a[*]", outputKey: ""}
  - type: patch
    patch:
      apiVersion: example.com/v1
      resource: widgets
      name: "{{ .Values.x }}"
      override: {fieldPath: "spec..x", value: {raw: "{{ nope }}"}}
      patchType: application/strategic-merge-patch+json
"#;
    let problems: Vec<String> = check_documents(text)
        .into_iter()
        .flat_map(|r| r.problems)
        .map(|p| p.location)
        .collect();
    for want in [
        "spec.alertLabels",
        "spec.cooldown",
        "spec.steps[0].readField.apiVersion",
        "spec.steps[0].readField.fieldPath",
        "spec.steps[0].readField.outputKey",
        "spec.steps[1].patch.name",
        "spec.steps[1].patch.override.fieldPath",
        "spec.steps[1].patch.override.value.raw",
        "spec.steps[1].patch.patchType",
    ] {
        assert!(
            problems.iter().any(|p| p == want),
            "no problem at {want}; got {problems:#?}"
        );
    }
}
