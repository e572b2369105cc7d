//! The CRDs checked in under `deploy/crds/` are exactly what the types generate.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! Regenerate with `lifeboat crds --out deploy/crds` (or `LIFEBOAT_UPDATE_CRDS=1 cargo test -p lifeboat-api`).

use std::path::PathBuf;

#[test]
fn checked_in_crds_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let update = std::env::var_os("LIFEBOAT_UPDATE_CRDS").is_some();
    for crd in lifeboat_api::crds::all() {
        let path = dir.join(lifeboat_api::crds::file_name(&crd));
        let generated = serde_yaml::to_string(&crd).expect("CRD serializes");
        if update {
            std::fs::write(&path, &generated).expect("write CRD");
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{} is missing ({e}); run `lifeboat crds --out deploy/crds`",
                path.display()
            )
        });
        assert!(
            checked_in == generated,
            "{} drifted from the Rust types; run `lifeboat crds --out deploy/crds` and commit the result",
            path.display()
        );
    }
}

#[test]
fn crds_have_names_categories_and_free_form_fields() {
    let crds = lifeboat_api::crds::all();
    let names: Vec<_> = crds
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "receivedalerts.recovery.elotl.co",
            "recoveryplans.recovery.elotl.co",
            "recoveryruns.recovery.elotl.co",
            "recoveryapprovals.recovery.elotl.co"
        ]
    );
    for crd in &crds {
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["recovery".to_string()][..])
        );
        assert_eq!(crd.spec.scope, "Namespaced");
        let v = &crd.spec.versions[0];
        // An approval is a record of a decision: it has no status.
        let has_status = crd.spec.names.kind != "RecoveryApproval";
        assert_eq!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            has_status,
            "status subresource of {}",
            crd.spec.names.kind
        );
    }
    // value.raw and the job template must be kept verbatim by a real API server.
    let plan = serde_json::to_value(&crds[1]).expect("json");
    let step = &plan["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["steps"]["items"]["properties"];
    assert_eq!(
        step["patch"]["properties"]["override"]["properties"]["value"]["properties"]["raw"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    assert_eq!(
        step["job"]["properties"]["template"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}
