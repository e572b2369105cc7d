//! Property tests: field paths, template rendering, patch idempotence, parser robustness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use lifeboat_api::{AlertSpec, PatchType};
use lifeboat_engine::fieldpath::{FieldPath, Segment};
use lifeboat_engine::patch::{BuiltPatch, build_patch, merge_key_for};
use lifeboat_engine::template::{Template, TemplateContext, render_leaves};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9_-]{0,8}",
        // Keys needing quotes or escapes.
        "[a-z.\\[\\]\"'\\\\/ ~]{1,8}",
    ]
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// JSON without nulls (merge-style patches cannot carry null).
fn arb_value() -> impl Strategy<Value = Value> {
    arb_scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Paths of every node of `v` (object members and list elements).
fn all_paths(v: &Value, prefix: &mut Vec<Segment>, out: &mut Vec<Vec<Segment>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                prefix.push(Segment::Key(k.clone()));
                out.push(prefix.clone());
                all_paths(x, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                prefix.push(Segment::Index(i));
                out.push(prefix.clone());
                all_paths(x, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn set_then_get_returns_the_value(doc in arb_value(), pick in any::<prop::sample::Index>(), value in arb_value(), extra in prop::collection::vec(arb_key(), 0..3)) {
        let mut doc = json!({"root": doc});
        let mut paths = Vec::new();
        all_paths(&doc, &mut Vec::new(), &mut paths);
        let mut segs = pick.get(&paths).clone();
        // Setting below an existing node: new object keys are created when the node is an object.
        let target_is_object = FieldPath::from_segments(segs.clone()).get(&doc).map(|v| v.is_object()).unwrap_or(false);
        if target_is_object {
            segs.extend(extra.into_iter().map(Segment::Key));
        }
        let path = FieldPath::from_segments(segs);
        let reparsed = FieldPath::parse(&path.to_string());
        prop_assert_eq!(reparsed.as_ref(), Ok(&path), "canonical form {} does not parse back", path);
        path.set(&mut doc, value.clone()).map_err(|e| TestCaseError::fail(format!("set {path}: {e}")))?;
        prop_assert_eq!(path.get(&doc), Ok(&value));
    }

    #[test]
    fn rendered_values_are_data_not_markup(s in "(.|\n){0,40}", t in prop_oneof![Just("{{".to_string()), Just("\"}\n,".to_string()), "\\PC{0,10}"]) {
        let value = format!("{s}{t}");
        let values: BTreeMap<String, Value> = [("v".to_string(), Value::String(value.clone()))].into_iter().collect();
        let alert = AlertSpec { name: "a".into(), labels: [("x".to_string(), value.clone())].into_iter().collect(), annotations: BTreeMap::new() };
        let ctx = TemplateContext { values: &values, alert: &alert, run_name: "r", run_namespace: "n", run_phase: "Running", run_message: "" };
        let doc = json!({
            "data": {"cfg": "{{ .Values.v }}", "k": "{{ .Alert.Labels.x }}"},
            "list": ["pre {{ .Values.v }} post", 1, true],
        });
        let out = render_leaves(&doc, &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let want = json!({
            "data": {"cfg": value.clone(), "k": value.clone()},
            "list": [format!("pre {value} post"), 1, true],
        });
        prop_assert_eq!(&out, &want);
        let text = serde_json::to_string(&out).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, want);
    }

    #[test]
    fn field_path_parser_never_panics(s in "\\PC{0,60}") {
        if let Ok(p) = FieldPath::parse(&s) {
            prop_assert_eq!(FieldPath::parse(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn field_path_parser_never_panics_on_syntax_soup(s in "[{}.a-z0-9\\[\\]\"'?()@=!*:$\\\\ -]{0,40}") {
        if let Ok(p) = FieldPath::parse(&s) {
            prop_assert_eq!(FieldPath::parse(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn template_parser_never_panics(s in "\\PC{0,80}") {
        check_template_does_not_panic(&s);
    }

    #[test]
    fn template_parser_never_panics_on_syntax_soup(s in "(\\{\\{-? |\\{\\{| -?\\}\\}|\\}\\}|\\.Values\\.[a-z]|\\.Alert\\.Labels\\.x|\\$|\\||\\(|\\)|\"[a-z%]*\"|`x`|[0-9.e+-]+|if |else |end|range |with |default |index |printf |quote |eq |and |not |toJson |b64dec |/\\* |\\*/| |\n|[a-z])*") {
        check_template_does_not_panic(&s);
    }

    #[test]
    fn built_patches_are_idempotent(
        names in prop::collection::btree_set("[a-z]{1,4}", 1..4),
        pick in any::<prop::sample::Index>(),
        which in 0..7usize,
        value in arb_value(),
        kind in 0..3usize,
    ) {
        let names: Vec<String> = names.into_iter().collect();
        let containers: Vec<Value> = names.iter().map(|n| json!({"name": n, "image": format!("img-{n}"), "env": [{"name": "A", "value": "1"}]})).collect();
        let current = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "resourceVersion": "7", "labels": {"app": "x"}},
            "spec": {"containers": containers, "restartPolicy": "Never"}
        });
        let i = pick.index(names.len());
        let name = &names[i];
        let path = match which {
            0 => format!("spec.containers[{i}].image"),
            1 => format!("spec.containers[?(@.name==\"{name}\")].image"),
            2 => "metadata.labels.app".to_string(),
            3 => "metadata.annotations[\"example.com/owner\"]".to_string(),
            4 => format!("spec.containers[{i}]"),
            5 => format!("spec.containers[?(@.name=='{name}')].env[0].value"),
            _ => "spec.restartPolicy".to_string(),
        };
        let path = FieldPath::parse(&path).unwrap();
        let patch_type = [PatchType::JsonPatch, PatchType::MergePatch, PatchType::StrategicMergePatch][kind];
        let built = build_patch(patch_type, &path, value.clone(), Some(&current), "v1")
            .map_err(|e| TestCaseError::fail(format!("{path} {patch_type:?}: {e}")))?;
        let mut expected = current.clone();
        path.set(&mut expected, value).unwrap();
        let once = apply(&current, &built).map_err(TestCaseError::fail)?;
        let twice = apply(&once, &built).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&once, &expected, "{} {:?} body {}", path, built.patch_type, built.body);
        prop_assert_eq!(&twice, &once, "applying twice differs from once: {} {}", path, built.body);
    }
}

fn check_template_does_not_panic(s: &str) {
    if let Ok(t) = Template::parse(s) {
        let values: BTreeMap<String, Value> = [("a".to_string(), json!({"b": [1, "x"]}))]
            .into_iter()
            .collect();
        let alert = AlertSpec::default();
        let ctx = TemplateContext {
            values: &values,
            alert: &alert,
            run_name: "r",
            run_namespace: "n",
            run_phase: "Running",
            run_message: "",
        };
        let _ = t.render(&ctx);
        let _ = t.referenced_values();
    }
}

fn apply(doc: &Value, built: &BuiltPatch) -> Result<Value, String> {
    let mut out = doc.clone();
    match built.patch_type {
        PatchType::JsonPatch => {
            let p: json_patch::Patch =
                serde_json::from_value(built.body.clone()).map_err(|e| e.to_string())?;
            json_patch::patch(&mut out, &p)
                .map_err(|e| format!("json patch {}: {e}", built.body))?;
        }
        PatchType::MergePatch => json_patch::merge(&mut out, &built.body),
        PatchType::StrategicMergePatch => smp_apply(&mut out, &built.body),
    }
    Ok(out)
}

/// A test-only strategic merge applier for the subset the engine emits: maps merge (null
/// deletes), lists with a known merge key merge element-wise by that key, other values
/// replace.
fn smp_apply(target: &mut Value, patch: &Value) {
    let Value::Object(pm) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(tm) = target else { return };
    for (k, pv) in pm {
        match (pv, merge_key_for(k)) {
            (Value::Null, _) => {
                tm.remove(k);
            }
            (Value::Array(items), Some(mk)) if tm.get(k).is_some_and(Value::is_array) => {
                let Some(Value::Array(list)) = tm.get_mut(k) else {
                    continue;
                };
                for item in items {
                    let key = item.get(mk);
                    match list
                        .iter_mut()
                        .find(|e| e.get(mk).is_some() && e.get(mk) == key)
                    {
                        Some(existing) => smp_apply(existing, item),
                        None => list.push(item.clone()),
                    }
                }
            }
            (Value::Object(_), _) => smp_apply(tm.entry(k.clone()).or_insert(Value::Null), pv),
            _ => {
                tm.insert(k.clone(), pv.clone());
            }
        }
    }
}
