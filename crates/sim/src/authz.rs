//! Impersonation and a simple authorization table.
//!
//! Requests without `Impersonate-User` are cluster-admin. Impersonated requests are allowed
//! only by a rule naming the user (or one of its `Impersonate-Group`s).

use std::sync::Mutex;

#[derive(Clone, Debug)]
struct Rule {
    subject: String,
    verbs: Vec<String>,
    group: String,
    resource: String,
    namespace: Option<String>,
}

/// The authorization rules of one cluster.
#[derive(Debug, Default)]
pub struct Authz {
    rules: Mutex<Vec<Rule>>,
}

/// Who a request acts as.
#[derive(Clone, Debug, Default)]
pub struct UserInfo {
    /// `Impersonate-User`.
    pub user: String,
    /// `Impersonate-Group` headers.
    pub groups: Vec<String>,
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

    /// Whether `who` may do `verb` on `group`/`resource` in `namespace` ("" = cluster scope).
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
}
