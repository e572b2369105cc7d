//! Every seed example parses into the types and survives a round trip.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;

use lifeboat_api::{ReceivedAlert, RecoveryPlan, RecoveryRun};
use serde::de::DeserializeOwned;

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seed-examples")
}

fn round_trip<T: DeserializeOwned + serde::Serialize>(file: &str) -> (serde_json::Value, T) {
    let path = seed_dir().join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let original: serde_json::Value = serde_yaml::from_str(&text).expect("seed is YAML");
    let typed: T =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file} does not parse: {e}"));
    let again: serde_json::Value = serde_json::to_value(&typed).expect("serialize");
    assert_eq!(
        strip_nulls(original.clone()),
        strip_nulls(again),
        "{file}: round trip changed the document"
    );
    (original, typed)
}

fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(strip_nulls).collect())
        }
        other => other,
    }
}

#[test]
fn seed_received_alerts_round_trip() {
    for f in ["received-alert-000.yaml", "received-alert-003.yaml"] {
        let (_, alert): (_, ReceivedAlert) = round_trip(f);
        assert!(!alert.spec.labels.is_empty(), "{f}: labels");
        assert_eq!(alert.status.map(|s| s.processed), Some(false));
    }
}

#[test]
fn seed_recovery_plans_round_trip() {
    for f in ["recovery-plan-000.yaml", "recovery-plan-003.yaml"] {
        let (_, plan): (_, RecoveryPlan) = round_trip(f);
        assert_eq!(plan.spec.steps.len(), 3, "{f}");
        assert_eq!(
            plan.spec.alert_labels.get("app").map(String::as_str),
            Some("my-app")
        );
        let patch = plan.spec.steps[1].patch.as_ref().expect("patch body");
        assert_eq!(
            patch.override_.value.raw,
            serde_json::json!("{{ .Values.podImage }}")
        );
    }
}

#[test]
fn seed_recovery_runs_round_trip() {
    for f in ["recovery-run-000.yaml", "recovery-run-003.yaml"] {
        let (_, run): (_, RecoveryRun) = round_trip(f);
        let status = run.status.expect("status");
        assert_eq!(status.phase, lifeboat_api::RunPhase::Completed);
        assert_eq!(
            status.values.get("podImage"),
            Some(&serde_json::json!("example-image:v1"))
        );
        assert_eq!(status.conditions[0].type_, "Success");
    }
}
