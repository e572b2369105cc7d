//! Structural schemas: pruning, defaulting and validation the way kube-apiserver does it,
//! including on lifeboat's own CRDs and the seed examples.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use lifeboat_sim::structural::{FieldError, StructuralSchema, invalid_message};
use serde_json::{Value, json};

fn schema(v: Value) -> StructuralSchema {
    StructuralSchema::from_openapi(&v).unwrap_or_else(|e| panic!("schema rejected: {e}"))
}

/// The structural schema of one of lifeboat's CRDs, by kind.
fn lifeboat_schema(kind: &str) -> StructuralSchema {
    let crd = lifeboat_api::crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind}"));
    let crd = serde_json::to_value(&crd).unwrap();
    let s = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    StructuralSchema::from_openapi(s)
        .unwrap_or_else(|e| panic!("lifeboat's {kind} CRD schema is not structural: {e}"))
}

fn seed(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/seed-examples")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Prune + default, then validate, as the API server does on create.
fn admit(s: &StructuralSchema, mut obj: Value) -> (Value, Vec<FieldError>) {
    s.prune(&mut obj);
    s.apply_defaults(&mut obj);
    let errs = s.validate(&obj);
    (obj, errs)
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn free_form_field_is_pruned_without_preserve_unknown_fields_and_kept_with_it() {
    let without = schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string"},
            "raw": {"type": "object"}
        }}}
    }));
    let mut obj = json!({
        "apiVersion": "x.io/v1", "kind": "T", "metadata": {"name": "a", "labels": {"k": "v"}},
        "spec": {"name": "n", "raw": {"anything": {"deep": true}}, "unknown": 1},
        "extra": "dropped"
    });
    without.prune(&mut obj);
    assert_eq!(
        obj,
        json!({
            "apiVersion": "x.io/v1", "kind": "T", "metadata": {"name": "a", "labels": {"k": "v"}},
            "spec": {"name": "n", "raw": {}}
        }),
        "unknown fields (and the content of an object without properties) are pruned; apiVersion/kind/metadata never"
    );

    let with = schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string"},
            "raw": {"x-kubernetes-preserve-unknown-fields": true},
            "tmpl": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}}
    }));
    for raw in [
        json!(true),
        json!("text"),
        json!({"a": [1, {"b": null}]}),
        json!([1, 2]),
    ] {
        let mut obj =
            json!({"spec": {"name": "n", "raw": raw, "tmpl": {"spec": {"x": 1}}, "unknown": 1}});
        with.prune(&mut obj);
        assert_eq!(
            obj,
            json!({"spec": {"name": "n", "raw": raw, "tmpl": {"spec": {"x": 1}}}}),
            "preserve-unknown-fields keeps {raw} verbatim"
        );
    }
}

#[test]
fn additional_properties_and_embedded_resources_prune_their_content() {
    let s = schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "ports": {"type": "object", "additionalProperties": {
                "type": "object", "properties": {"port": {"type": "integer"}}
            }},
            "obj": {"type": "object", "x-kubernetes-embedded-resource": true,
                    "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}
        }}}
    }));
    let mut obj = json!({"spec": {
        "labels": {"a": "1", "b": "2"},
        "ports": {"http": {"port": 80, "junk": 1}},
        "obj": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"a": "x", "b": "y"}, "status": {}}
    }});
    s.prune(&mut obj);
    assert_eq!(
        obj,
        json!({"spec": {
            "labels": {"a": "1", "b": "2"},
            "ports": {"http": {"port": 80}},
            "obj": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"a": "x"}}
        }})
    );
}

#[test]
fn non_structural_schemas_are_rejected_with_the_api_servers_reason() {
    let cases = [
        (
            json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
            "openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
        ),
        (
            json!({"properties": {"spec": {"type": "object"}}}),
            "openAPIV3Schema.type: Required value: must not be empty at the root",
        ),
        (
            json!({"type": "object", "properties": {"l": {"type": "array"}}}),
            "openAPIV3Schema.properties[l].items: Required value: must be specified",
        ),
        (
            json!({"type": "object", "properties": {"l": {"type": "array", "items": {"description": "no type"}}}}),
            "openAPIV3Schema.properties[l].items.type: Required value: must not be empty for specified array items",
        ),
        (
            json!({"type": "object", "properties": {"m": {"type": "object",
                "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}}}),
            "additionalProperties and properties are mutual exclusive",
        ),
        (
            json!({"type": "string"}),
            "openAPIV3Schema.type: Invalid value: \"string\": must be object at the root",
        ),
        (
            json!({"type": "object", "properties": {"p": {"type": "string", "pattern": "(["}}}),
            "openAPIV3Schema.properties[p].pattern: Invalid value: \"([\": must be a valid regular expression",
        ),
        (
            json!({"type": "object", "properties": {"r": {"$ref": "#/definitions/x"}}}),
            "$ref",
        ),
    ];
    for (s, want) in cases {
        let err = StructuralSchema::from_openapi(&s)
            .err()
            .unwrap_or_else(|| panic!("{s} should be rejected"));
        assert!(err.contains(want), "for {s}:\n got  {err}\n want {want}");
    }
    // The exceptions: int-or-string and preserve-unknown-fields need no type.
    schema(json!({"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": true},
        "any": {"x-kubernetes-preserve-unknown-fields": true},
        "list": {"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": true}}
    }}));
}

#[test]
fn lifeboat_crds_are_structural_and_keep_the_seed_examples_intact() {
    for (kind, files) in [
        (
            "ReceivedAlert",
            ["received-alert-000.yaml", "received-alert-003.yaml"],
        ),
        (
            "RecoveryPlan",
            ["recovery-plan-000.yaml", "recovery-plan-003.yaml"],
        ),
        (
            "RecoveryRun",
            ["recovery-run-000.yaml", "recovery-run-003.yaml"],
        ),
    ] {
        let s = lifeboat_schema(kind);
        for file in files {
            let original = seed(file);
            let (admitted, errs) = admit(&s, original.clone());
            assert!(errs.is_empty(), "{file} is invalid: {:?}", messages(&errs));
            assert_eq!(admitted, original, "{file} changed by pruning/defaulting");
        }
    }
}

#[test]
fn lifeboat_crds_keep_value_raw_of_any_shape_and_the_job_template() {
    let s = lifeboat_schema("RecoveryPlan");
    let template = json!({
        "metadata": {"labels": {"app": "notify"}},
        "spec": {
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo {{ .Values.x }}"],
                            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}],
            "restartPolicy": "Never",
            "volumes": [{"name": "v", "configMap": {"name": "cm"}}]
        }
    });
    for raw in [
        json!(true),
        json!("{{ .Values.addr }}"),
        json!({"backend": {"server": "{{ .Values.addr }}", "port": 5432, "enabled": false, "tags": ["a"]}}),
    ] {
        let plan = json!({
            "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {
                "alertLabels": {"app": "db"},
                "steps": [
                    {"patch": {"apiVersion": "v1", "resource": "configmaps", "name": "cfg",
                               "override": {"fieldPath": "data.x", "value": {"raw": raw.clone()}},
                               "patchType": "application/merge-patch+json"},
                     "type": "patch"},
                    {"type": "job", "job": {"template": template.clone()}}
                ]
            }
        });
        let (admitted, errs) = admit(&s, plan.clone());
        assert!(
            errs.is_empty(),
            "plan with raw {raw} invalid: {:?}",
            messages(&errs)
        );
        assert_eq!(
            admitted["spec"]["steps"][0]["patch"]["override"]["value"]["raw"], raw,
            "value.raw pruned or altered"
        );
        assert_eq!(
            admitted["spec"]["steps"][1]["job"]["template"], template,
            "job template altered"
        );
        assert_eq!(admitted, plan, "nothing of a valid plan is pruned");
    }
}

#[test]
fn violations_give_the_api_servers_field_errors() {
    let s = lifeboat_schema("RecoveryPlan");
    let plan = json!({
        "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan", "metadata": {"name": "bad"},
        "spec": {
            "alertLabels": {"app": 5},
            "steps": [
                {"type": "foo"},
                {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods", "name": "p",
                  "override": {"fieldPath": "x", "value": {}}, "patchType": "text/plain"}},
                {"type": "readField", "retries": {"limit": "three"}, "title": 7}
            ],
            "suspend": "yes"
        }
    });
    let (_, errs) = admit(&s, plan);
    let got = messages(&errs);
    let want = [
        "spec.alertLabels.app: Invalid value: \"integer\": spec.alertLabels.app in body must be of type string: \"integer\"",
        "spec.steps[0].type: Unsupported value: \"foo\": supported values: \"readField\", \"patch\", \"job\", \"wait\", \"check\", \"approval\", \"notify\"",
        "spec.steps[1].patch.override.value.raw: Required value",
        "spec.steps[1].patch.patchType: Unsupported value: \"text/plain\": supported values: \"application/json-patch+json\", \"application/merge-patch+json\", \"application/strategic-merge-patch+json\"",
        "spec.steps[2].retries.limit: Invalid value: \"string\": spec.steps[2].retries.limit in body must be of type integer: \"string\"",
        "spec.steps[2].title: Invalid value: \"integer\": spec.steps[2].title in body must be of type string: \"integer\"",
        "spec.suspend: Invalid value: \"string\": spec.suspend in body must be of type boolean: \"string\"",
    ];
    for w in want {
        assert!(
            got.iter().any(|g| g == w),
            "missing error\n  {w}\ngot:\n  {}",
            got.join("\n  ")
        );
    }
    let not_supported = errs
        .iter()
        .find(|e| e.field == "spec.steps[0].type")
        .unwrap();
    assert_eq!(not_supported.reason, "FieldValueNotSupported");
    assert_eq!(
        errs.iter()
            .find(|e| e.field == "spec.suspend")
            .unwrap()
            .reason,
        "FieldValueTypeInvalid"
    );

    let (_, errs) = admit(
        &s,
        json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
        "metadata": {"name": "empty"}, "spec": {}}),
    );
    assert_eq!(
        messages(&errs),
        [
            "spec.alertLabels: Required value",
            "spec.steps: Required value"
        ]
    );
    assert!(errs.iter().all(|e| e.reason == "FieldValueRequired"));
    assert_eq!(
        invalid_message("RecoveryPlan", "recovery.elotl.co", "empty", &errs),
        "RecoveryPlan.recovery.elotl.co \"empty\" is invalid: [spec.alertLabels: Required value, spec.steps: Required value]"
    );

    let alerts = lifeboat_schema("ReceivedAlert");
    let (_, errs) = admit(
        &alerts,
        json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "ReceivedAlert",
        "metadata": {"name": "a"}, "spec": {"labels": {"a": "b"}, "startsAt": "yesterday"}}),
    );
    assert_eq!(
        messages(&errs),
        [
            "spec.startsAt: Invalid value: \"yesterday\": spec.startsAt in body must be of type date-time: \"yesterday\""
        ]
    );
}

#[test]
fn bounds_lengths_patterns_nullable_int_or_string_and_defaults() {
    let s = schema(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 3, "default": 1},
            "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1},
            "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"}},
            "port": {"x-kubernetes-int-or-string": true},
            "note": {"type": "string", "nullable": true},
            "mode": {"type": "string", "default": "auto", "enum": ["auto", "manual"]}
        }}}
    }));
    let (obj, errs) = admit(
        &s,
        json!({"spec": {"name": "ab", "port": "http", "note": null}}),
    );
    assert!(errs.is_empty(), "{:?}", messages(&errs));
    assert_eq!(obj["spec"]["replicas"], 1, "default applied");
    assert_eq!(obj["spec"]["mode"], "auto", "default applied");
    assert_eq!(obj["spec"]["note"], Value::Null, "nullable null kept");

    let (_, errs) = admit(
        &s,
        json!({"spec": {
            "name": "ABCDEFG", "replicas": 0, "ratio": 1, "tags": ["a", "b", "c"], "port": true, "mode": "x"
        }}),
    );
    let got = messages(&errs);
    let want = [
        "spec.name: Too long: may not be more than 5 bytes",
        "spec.name: Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'",
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
        "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1",
        "spec.tags: Too many: 3: must have at most 2 items",
        "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
        "spec.mode: Unsupported value: \"x\": supported values: \"auto\", \"manual\"",
    ];
    for w in want {
        assert!(
            got.iter().any(|g| g == w),
            "missing error\n  {w}\ngot:\n  {}",
            got.join("\n  ")
        );
    }
    let (_, errs) = admit(&s, json!({"spec": {"name": "a", "tags": []}}));
    assert_eq!(
        messages(&errs),
        [
            "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long",
            "spec.tags: Invalid value: \"array\": spec.tags in body should have at least 1 items",
        ]
    );
    // A null of a non-nullable field is dropped before validation (kube-apiserver's
    // PruneNonNullableNullsWithoutDefaults), so a required one is reported missing.
    let (_, errs) = admit(&s, json!({"spec": {"name": null}}));
    assert_eq!(messages(&errs), ["spec.name: Required value"]);
}

/// The CEL rules of lifeboat's CRDs report what kube-cel reports when it evaluates them over
/// the whole object (the simulator evaluates literal `self.matches()` patterns and each
/// subtree on its own), for a plan and a run that break every pattern and other rules.
#[test]
fn lifeboat_crd_rules_report_what_kube_cel_reports_over_the_whole_object() {
    let bad_steps = json!([
        {"type": "readField", "timeout": "5 minutes", "retries": {"limit": 11, "backoff": "soon"},
         "readField": {"apiVersion": "V1", "resource": "Pods", "name": "", "fieldPath": "",
                       "outputKey": "1x"}},
        {"type": "patch", "patch": {"apiVersion": "v1", "resource": "pods_", "name": "",
         "override": {"fieldPath": "spec.x", "value": {"raw": "y"}}}},
        {"type": "wait", "wait": {"apiVersion": "apps/v0", "resource": "deployments", "name": "d"}},
        {"type": "check", "check": {"pollInterval": "1 s", "assertions": [
            {"field": {"apiVersion": "v1", "resource": "Pods", "name": "", "fieldPath": "a"}}]}},
        {"type": "notify", "notify": {"webhook": {"urlFrom": {"name": "Bad_Name", "key": "a b"}}}},
        {"type": "job", "readField": {"apiVersion": "v1", "resource": "pods", "name": "p",
         "fieldPath": "a", "outputKey": "ok"}}
    ]);
    let plan = json!({
        "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryPlan",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"alertLabels": {"a": "b"}, "cooldown": "1d", "serviceAccountName": "SA",
                 "steps": bad_steps.clone(), "finally": bad_steps.clone()}
    });
    let run = json!({
        "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
        "metadata": {"name": "r", "namespace": "default"},
        "spec": {"planName": "p", "alertName": "a", "steps": bad_steps}
    });
    for (kind, obj) in [("RecoveryPlan", plan), ("RecoveryRun", run)] {
        let crd = lifeboat_api::crds::all()
            .into_iter()
            .find(|c| c.spec.names.kind == kind)
            .unwrap();
        let crd = serde_json::to_value(&crd).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let reference = kube_cel::Validator::new()
            .validate_compiled(&kube_cel::compile_schema(schema), &obj, None)
            .unwrap_err();
        let mut want: Vec<(String, String)> = reference
            .as_slice()
            .iter()
            .map(|e| (e.field_path.clone(), e.message.clone()))
            .collect();
        want.sort();
        let got_errors = lifeboat_schema(kind).validate_rules(&obj, None);
        let mut got: Vec<(String, String)> = got_errors
            .iter()
            .map(|e| (e.field.clone(), e.message.clone()))
            .collect();
        got.sort();
        assert_eq!(got.len(), want.len(), "{kind}: {got:#?} against {want:#?}");
        for ((field, message), (want_field, want_message)) in got.iter().zip(&want) {
            assert_eq!(field, want_field, "{kind}");
            assert!(
                message.ends_with(want_message.as_str()),
                "{kind} {field}: {message:?} does not end with kube-cel's {want_message:?}"
            );
        }
        assert!(
            got.len() >= 15,
            "{kind}: the object breaks at least 15 rules, {} reported",
            got.len()
        );
        assert!(got_errors.iter().all(|e| e.reason == "FieldValueInvalid"));
    }
}
