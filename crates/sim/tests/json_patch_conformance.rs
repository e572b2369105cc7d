//! The public JSON Patch (RFC 6902) conformance suite, run through the JSON Patch code path
//! the simulator serves `application/json-patch+json` with.
//!
//! Every non-disabled record must give `expected` (or, where `error` is set, fail; where
//! neither is set, succeed). Every failing record is named by file, index and comment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use lifeboat_sim::patch::apply_json_patch;
use serde_json::Value;

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/json-patch-tests")
}

fn load(file: &str) -> Vec<Value> {
    let path = suite_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance file {}: {e}", path.display()));
    let parsed: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    parsed
        .as_array()
        .unwrap_or_else(|| panic!("{} is not a JSON array", path.display()))
        .clone()
}

/// Run every record of one file; return a description of each failure.
fn run(file: &str) -> (usize, Vec<String>) {
    let records = load(file);
    let mut ran = 0;
    let mut failures = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        if rec
            .get("disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            continue;
        }
        ran += 1;
        let comment = rec
            .get("comment")
            .and_then(Value::as_str)
            .unwrap_or("(no comment)");
        let doc = rec.get("doc").cloned().unwrap_or(Value::Null);
        let patch = rec.get("patch").cloned().unwrap_or(Value::Null);
        let result = apply_json_patch(&doc, &patch);
        let name = format!("{file}[{i}] {comment:?}");
        match (rec.get("error"), rec.get("expected"), result) {
            (Some(err), _, Ok(got)) => failures.push(format!(
                "{name}: expected an error ({err}), got success: {got}"
            )),
            (Some(_), _, Err(_)) => {}
            (None, Some(expected), Ok(got)) if &got == expected => {}
            (None, Some(expected), Ok(got)) => {
                failures.push(format!("{name}: expected {expected}, got {got}"))
            }
            (None, None, Ok(_)) => {}
            (None, _, Err(e)) => failures.push(format!("{name}: unexpected error: {e}")),
        }
    }
    (ran, failures)
}

#[test]
fn json_patch_tests_json_all_records_pass() {
    let (ran, failures) = run("tests.json");
    assert!(ran > 80, "only {ran} records ran from tests.json");
    assert!(
        failures.is_empty(),
        "{} of {ran} records failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn json_patch_spec_tests_json_all_records_pass() {
    let (ran, failures) = run("spec_tests.json");
    assert!(ran > 10, "only {ran} records ran from spec_tests.json");
    assert!(
        failures.is_empty(),
        "{} of {ran} records failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
