//! Defaulting and validation of Roles, ClusterRoles and their bindings on writes, with
//! kube-apiserver's field errors, so a binding the authorizer could never use is refused
//! as it is on a real cluster.

use serde_json::Value;

use crate::error::{Cause, cause};

const GROUP: &str = "rbac.authorization.k8s.io";

fn required(field: &str, detail: &str) -> Cause {
    let message = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    cause("FieldValueRequired", field, message)
}

fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
    cause(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: \"{value}\": supported values: {}",
            list.join(", ")
        ),
    )
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn is_empty_list(v: &Value) -> bool {
    v.as_array().is_none_or(Vec::is_empty)
}

/// Default and validate an object of `plural` (one of the four RBAC resources) before it
/// is stored; `old` is the stored object on updates.
pub fn prepare(plural: &str, obj: &mut Value, old: Option<&Value>) -> Vec<Cause> {
    match plural {
        "roles" => rules_causes(obj, true),
        "clusterroles" => {
            let mut causes = rules_causes(obj, false);
            let aggregation = &obj["aggregationRule"];
            if aggregation.is_object() && is_empty_list(&aggregation["clusterRoleSelectors"]) {
                causes.push(required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            causes
        }
        "rolebindings" => binding_causes(obj, old, true),
        "clusterrolebindings" => binding_causes(obj, old, false),
        _ => Vec::new(),
    }
}

fn rules_causes(obj: &Value, namespaced: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
        let path = |f: &str| format!("rules[{i}].{f}");
        if is_empty_list(&rule["verbs"]) {
            causes.push(required(
                &path("verbs"),
                "verbs must contain at least one value",
            ));
        }
        if !is_empty_list(&rule["nonResourceURLs"]) {
            let urls = rule["nonResourceURLs"].to_string();
            if namespaced {
                causes.push(cause(
                    "FieldValueInvalid",
                    &path("nonResourceURLs"),
                    format!(
                        "Invalid value: {urls}: namespaced rules cannot apply to non-resource URLs"
                    ),
                ));
            }
            if !is_empty_list(&rule["apiGroups"])
                || !is_empty_list(&rule["resources"])
                || !is_empty_list(&rule["resourceNames"])
            {
                causes.push(cause(
                    "FieldValueInvalid",
                    &path("nonResourceURLs"),
                    format!("Invalid value: {urls}: rules cannot apply to both regular resources and non-resource URLs"),
                ));
            }
            continue;
        }
        if is_empty_list(&rule["apiGroups"]) {
            causes.push(required(
                &path("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if is_empty_list(&rule["resources"]) {
            causes.push(required(
                &path("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    causes
}

fn binding_causes(obj: &mut Value, old: Option<&Value>, namespaced: bool) -> Vec<Cause> {
    // Defaults of rbac.authorization.k8s.io/v1.
    if str_at(&obj["roleRef"], "apiGroup").is_empty() && obj["roleRef"].is_object() {
        obj["roleRef"]["apiGroup"] = Value::String(GROUP.into());
    }
    if let Some(subjects) = obj["subjects"].as_array_mut() {
        for s in subjects
            .iter_mut()
            .filter(|s| str_at(s, "apiGroup").is_empty())
        {
            if matches!(str_at(s, "kind"), "User" | "Group") {
                s["apiGroup"] = Value::String(GROUP.into());
            }
        }
    }
    let mut causes = Vec::new();
    let role_ref = &obj["roleRef"];
    let api_group = str_at(role_ref, "apiGroup");
    if api_group != GROUP {
        causes.push(not_supported("roleRef.apiGroup", api_group, &[GROUP]));
    }
    let kind = str_at(role_ref, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        causes.push(not_supported("roleRef.kind", kind, kinds));
    }
    if str_at(role_ref, "name").is_empty() {
        causes.push(required("roleRef.name", ""));
    }
    for (i, s) in obj["subjects"].as_array().into_iter().flatten().enumerate() {
        causes.extend(subject_causes(s, i, namespaced));
    }
    if let Some(old) = old
        && old["roleRef"] != obj["roleRef"]
    {
        causes.push(cause(
            "FieldValueInvalid",
            "roleRef",
            format!("Invalid value: {}: field is immutable", obj["roleRef"]),
        ));
    }
    causes
}

fn subject_causes(s: &Value, i: usize, namespaced: bool) -> Vec<Cause> {
    let path = |f: &str| format!("subjects[{i}].{f}");
    let mut causes = Vec::new();
    if str_at(s, "name").is_empty() {
        causes.push(required(&path("name"), ""));
    }
    let api_group = str_at(s, "apiGroup");
    match str_at(s, "kind") {
        "ServiceAccount" => {
            if !api_group.is_empty() {
                causes.push(not_supported(&path("apiGroup"), api_group, &[""]));
            }
            if !namespaced && str_at(s, "namespace").is_empty() {
                causes.push(required(&path("namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                causes.push(not_supported(&path("apiGroup"), api_group, &[GROUP]));
            }
        }
        other => causes.push(not_supported(
            &path("kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    causes
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bindings_are_defaulted_and_checked() {
        let mut rb = json!({
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}],
        });
        assert!(prepare("rolebindings", &mut rb, None).is_empty());
        assert_eq!(rb["roleRef"]["apiGroup"], GROUP);
        assert_eq!(rb["subjects"][0]["apiGroup"], GROUP);
        assert!(rb["subjects"][1].get("apiGroup").is_none());

        let mut crb = rb.clone();
        let fields: Vec<String> = prepare("clusterrolebindings", &mut crb, None)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            fields,
            vec![
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[1].namespace: Required value",
            ]
        );

        let mut changed = rb.clone();
        changed["roleRef"]["name"] = json!("other");
        let causes = prepare("rolebindings", &mut changed, Some(&rb));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "roleRef");
    }

    #[test]
    fn rules_need_verbs_groups_and_resources() {
        let mut role = json!({"rules": [{"resources": ["pods"]}]});
        let fields: Vec<String> = prepare("roles", &mut role, None)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, vec!["rules[0].verbs", "rules[0].apiGroups"]);
    }
}
