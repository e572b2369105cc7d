//! `lifeboat crds` prints and writes the three CRDs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const EXPECTED: [&str; 4] = [
    "receivedalerts.recovery.elotl.co",
    "recoveryplans.recovery.elotl.co",
    "recoveryruns.recovery.elotl.co",
    "recoveryapprovals.recovery.elotl.co",
];

fn crd_name(doc: &serde_yaml::Value) -> String {
    assert_eq!(
        doc["kind"].as_str(),
        Some("CustomResourceDefinition"),
        "every document is a CRD: {doc:?}"
    );
    doc["metadata"]["name"]
        .as_str()
        .expect("CRD has a name")
        .to_string()
}

#[test]
fn crds_prints_every_crd() {
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .arg("crds")
        .output()
        .expect("run lifeboat crds");
    assert!(
        out.status.success(),
        "lifeboat crds failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    let mut names = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value =
            serde::Deserialize::deserialize(doc).expect("output parses as YAML");
        if value.is_null() {
            continue;
        }
        names.push(crd_name(&value));
    }
    assert_eq!(names, EXPECTED, "CRD names in output order");
}

#[test]
fn crds_out_writes_one_file_per_crd_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(["crds", "--out"])
            .arg(dir.path())
            .output()
            .expect("run lifeboat crds --out");
        assert!(
            out.status.success(),
            "lifeboat crds --out failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir.path())
            .expect("read out dir")
            .map(|e| {
                let p = e.expect("dir entry").path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).expect("read CRD file"),
                )
            })
            .collect();
        files.sort();
        files
    };
    let first = run();
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected: Vec<String> = EXPECTED.iter().map(|n| format!("{n}.yaml")).collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "one file per CRD, named <plural>.<group>.yaml"
    );
    for (file, text) in &first {
        let value: serde_yaml::Value = serde_yaml::from_str(text).expect("file is YAML");
        assert_eq!(
            format!("{}.yaml", crd_name(&value)),
            *file,
            "file name matches CRD"
        );
    }
    assert_eq!(run(), first, "a second run writes identical files");
}
