//! RBAC as kube-apiserver's authorizer evaluates it: the rules of the Roles and
//! ClusterRoles bound to a user by RoleBindings (in the request's namespace) and
//! ClusterRoleBindings, read from the store at check time.
//!
//! Aggregated ClusterRoles (`aggregationRule`) get the rules of the ClusterRoles their
//! selectors match, which kube-controller-manager copies into them on a real cluster.

use serde_json::Value;

use super::{Attributes, UserInfo};
use crate::selector::LabelSelector;
use crate::store::Store;

const ROLES: &str = "rbac.authorization.k8s.io/roles";
const CLUSTER_ROLES: &str = "rbac.authorization.k8s.io/clusterroles";
const ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/rolebindings";
const CLUSTER_ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/clusterrolebindings";

/// `Ok` when a rule bound to `user` allows `attrs`. Otherwise the reason kube-apiserver
/// appends to its 403 message: empty, or `RBAC: …` naming roles that bindings refer to but
/// that do not exist.
pub fn authorize(store: &Store, user: &UserInfo, attrs: &Attributes<'_>) -> Result<(), String> {
    let mut errors = Vec::new();
    // Cluster-wide bindings first, then those of the namespace, as kube-apiserver visits them.
    let cluster_bindings = store.list(CLUSTER_ROLE_BINDINGS, None).map(|b| (b, ""));
    let namespace_bindings = (!attrs.namespace.is_empty())
        .then(|| store.list(ROLE_BINDINGS, Some(attrs.namespace)))
        .into_iter()
        .flatten()
        .map(|b| (b, attrs.namespace));
    for (binding, namespace) in cluster_bindings.chain(namespace_bindings) {
        if !binds(binding, user, namespace) {
            continue;
        }
        match role_rules(store, &binding["roleRef"], namespace) {
            Ok(rules) => {
                if rules.into_iter().any(|r| rule_allows(r, attrs)) {
                    return Ok(());
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Err(reason(errors))
}

/// kube-apiserver's aggregate of errors: one as is, several de-duplicated in brackets.
fn reason(errors: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::new();
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.len() {
        0 => String::new(),
        1 => format!("RBAC: {}", unique[0]),
        _ => format!("RBAC: [{}]", unique.join(", ")),
    }
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// Whether one of the binding's subjects is `user`. ServiceAccount subjects of a
/// RoleBinding default to the binding's namespace.
fn binds(binding: &Value, user: &UserInfo, namespace: &str) -> bool {
    let mut subjects = binding["subjects"].as_array().into_iter().flatten();
    subjects.any(|s| {
        let name = s["name"].as_str().unwrap_or_default();
        match s["kind"].as_str() {
            Some("User") => user.user == name,
            Some("Group") => user.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let ns = s["namespace"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(namespace);
                !ns.is_empty()
                    && user
                        .user
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.split_once(':'))
                        == Some((ns, name))
            }
            _ => false,
        }
    })
}

/// The rules of the role a binding refers to, or the error kube-apiserver reports for it.
fn role_rules<'a>(
    store: &'a Store,
    role_ref: &'a Value,
    namespace: &str,
) -> Result<Vec<&'a Value>, String> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    match role_ref["kind"].as_str().unwrap_or_default() {
        "Role" => store
            .get(ROLES, namespace, name)
            .map(rules_of)
            .ok_or_else(|| format!("role.rbac.authorization.k8s.io \"{name}\" not found")),
        "ClusterRole" => {
            let role = store.get(CLUSTER_ROLES, "", name).ok_or_else(|| {
                format!("clusterrole.rbac.authorization.k8s.io \"{name}\" not found")
            })?;
            let mut rules = Vec::new();
            let mut seen = vec![name];
            cluster_role_rules(store, role, &mut seen, &mut rules);
            Ok(rules)
        }
        other => Err(format!("unsupported role reference kind: \"{other}\"")),
    }
}

fn rules_of(role: &Value) -> Vec<&Value> {
    role["rules"].as_array().into_iter().flatten().collect()
}

/// The rules of a ClusterRole; for an aggregated one, those of the ClusterRoles its
/// selectors match (transitively; `seen` stops cycles).
fn cluster_role_rules<'a>(
    store: &'a Store,
    role: &'a Value,
    seen: &mut Vec<&'a str>,
    out: &mut Vec<&'a Value>,
) {
    let aggregation = &role["aggregationRule"];
    if !aggregation.is_object() {
        out.extend(rules_of(role));
        return;
    }
    // A malformed selector matches nothing (the controller would not aggregate it).
    let selectors: Vec<LabelSelector> = aggregation["clusterRoleSelectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(LabelSelector::from_object)
        .collect();
    for other in store.list(CLUSTER_ROLES, None) {
        let name = other["metadata"]["name"].as_str().unwrap_or_default();
        if seen.contains(&name) || !selectors.iter().any(|s| s.matches(other)) {
            continue;
        }
        seen.push(name);
        cluster_role_rules(store, other, seen, out);
    }
}

/// Whether one PolicyRule allows a resource request.
fn rule_allows(rule: &Value, a: &Attributes<'_>) -> bool {
    let combined = match a.subresource {
        Some(s) => format!("{}/{s}", a.resource),
        None => a.resource.to_string(),
    };
    let resource_matches = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || a.subresource
                .is_some_and(|s| r.strip_prefix("*/") == Some(s))
    });
    let mut names = strings(&rule["resourceNames"]).peekable();
    let name_matches = names.peek().is_none() || names.any(|n| n == a.name);
    strings(&rule["verbs"]).any(|v| v == "*" || v == a.verb)
        && strings(&rule["apiGroups"]).any(|g| g == "*" || g == a.group)
        && resource_matches
        && name_matches
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(
        verb: &'a str,
        resource: &'a str,
        sub: Option<&'a str>,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            verb,
            group: "",
            resource,
            subresource: sub,
            namespace: "default",
            name,
        }
    }

    #[test]
    fn rules_match_like_kube_apiserver() {
        let rule = json!({"apiGroups": [""], "resources": ["pods", "*/status"], "verbs": ["get"]});
        assert!(rule_allows(&rule, &attrs("get", "pods", None, "p")));
        assert!(rule_allows(
            &rule,
            &attrs("get", "jobs", Some("status"), "j")
        ));
        assert!(!rule_allows(&rule, &attrs("get", "pods", Some("log"), "p")));
        assert!(!rule_allows(&rule, &attrs("list", "pods", None, "")));
        let named =
            json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"], "resourceNames": ["a"]});
        assert!(rule_allows(
            &named,
            &attrs("delete", "configmaps", None, "a")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("delete", "configmaps", None, "b")
        ));
        assert!(
            !rule_allows(&named, &attrs("list", "configmaps", None, "")),
            "resourceNames never match collections"
        );
    }

    #[test]
    fn missing_roles_are_the_reason() {
        assert_eq!(reason(vec![]), "");
        assert_eq!(reason(vec!["a".into(), "a".into()]), "RBAC: a");
        assert_eq!(reason(vec!["a".into(), "b".into()]), "RBAC: [a, b]");
    }
}
