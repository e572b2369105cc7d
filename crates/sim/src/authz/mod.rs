//! Authorization of requests that do not act as cluster-admin: a simple allow-list table,
//! or RBAC from the stored Roles and bindings (either allows), and kube-apiserver's 403.
//!
//! Cluster-admin requests (see [`crate::authn`]) never get here.

use std::sync::Mutex;

use crate::error::{Reason, SimError, qualified};
use crate::store::Store;

mod rbac;

/// The group whose members may do anything, as on kube-apiserver.
const MASTERS: &str = "system:masters";

#[derive(Clone, Debug)]
struct Rule {
    subject: String,
    verbs: Vec<String>,
    group: String,
    resource: String,
    namespace: Option<String>,
}

/// The allow-list table of one cluster.
#[derive(Debug, Default)]
pub struct Authz {
    rules: Mutex<Vec<Rule>>,
}

/// Who a request acts as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub user: String,
    /// The user's groups.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The user of ServiceAccount `name` in `namespace`, with the groups kube-apiserver gives
    /// it.
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".to_string(),
            ],
        }
    }
}

/// What a request asks to do, as an authorizer sees it.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    /// `get`, `list`, `create`, …, `impersonate`.
    pub verb: &'a str,
    /// API group ("" for core).
    pub group: &'a str,
    /// Plural resource.
    pub resource: &'a str,
    /// Subresource (`status`, `token`, …).
    pub subresource: Option<&'a str>,
    /// Namespace ("" at the cluster scope).
    pub namespace: &'a str,
    /// Object name ("" for collections).
    pub name: &'a str,
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern == value
}

impl Authz {
    /// Allow `user` (a user name or a group name) the `verbs` on `resource` (plural, or
    /// `resource/subresource`, or `*`) of API `group` (`""` for core, `*` for any), in one
    /// namespace or, with `None`, in every namespace and at the cluster scope.
    pub fn allow(
        &self,
        user: &str,
        verbs: &[&str],
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) {
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Rule {
                subject: user.to_string(),
                verbs: verbs.iter().map(|v| v.to_string()).collect(),
                group: group.to_string(),
                resource: resource.to_string(),
                namespace: namespace.map(str::to_string),
            });
    }

    /// Remove every rule.
    pub fn clear(&self) {
        self.rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Whether the table lets `who` do `verb` on `group`/`resource` in `namespace` ("" =
    /// cluster scope).
    pub fn allowed(
        &self,
        who: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: &str,
    ) -> bool {
        let rules = self
            .rules
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rules.iter().any(|r| {
            (r.subject == who.user || who.groups.contains(&r.subject))
                && r.verbs.iter().any(|v| matches(v, verb))
                && matches(&r.group, group)
                && matches(&r.resource, resource)
                && r.namespace
                    .as_deref()
                    .is_none_or(|ns| ns == namespace && !namespace.is_empty())
        })
    }

    /// Whether `who` may do what `attrs` asks: as a member of `system:masters`, by the
    /// table, or by RBAC objects in `store`. Otherwise kube-apiserver's 403.
    pub fn authorize(
        &self,
        store: &Store,
        who: &UserInfo,
        attrs: &Attributes<'_>,
    ) -> Result<(), SimError> {
        if who.groups.iter().any(|g| g == MASTERS) {
            return Ok(());
        }
        let resource = match attrs.subresource {
            Some(s) => format!("{}/{s}", attrs.resource),
            None => attrs.resource.to_string(),
        };
        if self.allowed(who, attrs.verb, attrs.group, &resource, attrs.namespace) {
            return Ok(());
        }
        rbac::authorize(store, who, attrs).map_err(|reason| forbidden(who, attrs, &reason))
    }
}

/// kube-apiserver's 403 for `who` asking `attrs`, with the authorizer's `reason` (if any)
/// appended.
pub fn forbidden(who: &UserInfo, attrs: &Attributes<'_>, reason: &str) -> SimError {
    let res_word = match attrs.subresource {
        Some(s) => format!("{}/{s}", attrs.resource),
        None => attrs.resource.to_string(),
    };
    let subject = qualified(attrs.group, attrs.resource);
    let what = if attrs.name.is_empty() {
        subject
    } else {
        format!("{subject} \"{}\"", attrs.name)
    };
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", attrs.namespace)
    };
    // kube-apiserver HTML-escapes this part (it echoes user input).
    let denial = format!(
        "User \"{}\" cannot {} resource \"{res_word}\" in API group \"{}\" {scope}",
        who.user, attrs.verb, attrs.group
    )
    .replace('&', "&amp;")
    .replace('<', "&lt;")
    .replace('>', "&gt;");
    let mut message = format!("{what} is forbidden: {denial}");
    if !reason.is_empty() {
        message.push_str(": ");
        message.push_str(reason);
    }
    SimError::new(Reason::Forbidden, message).with_details(attrs.name, attrs.group, attrs.resource)
}
