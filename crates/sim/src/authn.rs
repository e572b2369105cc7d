//! Who a request acts as.
//!
//! No credentials, or the kubeconfig's token ([`ADMIN_TOKEN`]), is cluster-admin. A
//! ServiceAccount token from the TokenRequest subresource is that ServiceAccount; any other
//! bearer token is 401. `Impersonate-User` / `Impersonate-Group` then switch to another
//! user, when the requester may `impersonate` it (cluster-admin always may).

use http::HeaderMap;

use crate::authz::{Attributes, UserInfo};
use crate::cluster::Cluster;
use crate::error::{Reason, SimError};

/// The bearer token of the kubeconfig the simulator writes: cluster-admin.
pub const ADMIN_TOKEN: &str = "lifeboat-sim";

const SA_PREFIX: &str = "system:serviceaccount:";

/// Who a request acts as: `None` is cluster-admin (no authorization checks). Errors are
/// 401 for an unknown token, 403 for a refused impersonation, 400 for groups without a user.
pub fn identify(cluster: &Cluster, headers: &HeaderMap) -> Result<Option<UserInfo>, SimError> {
    let requester = match bearer_token(headers) {
        None | Some(ADMIN_TOKEN) => None,
        Some(token) => {
            let st = cluster.lock_state();
            let user = cluster.tokens.authenticate(&st.store, token);
            Some(user.ok_or_else(|| SimError::new(Reason::Unauthorized, "Unauthorized"))?)
        }
    };
    let Some(wanted) = Impersonation::from_headers(headers)? else {
        return Ok(requester);
    };
    if let Some(requester) = &requester {
        let st = cluster.lock_state();
        for attrs in wanted.checks() {
            cluster.authz.authorize(&st.store, requester, &attrs)?;
        }
    }
    Ok(Some(wanted.into_user()))
}

/// The token of `Authorization: Bearer …`, if any (other schemes count as no credentials).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let mut parts = value.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next().filter(|t| !t.is_empty())?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token)
}

/// `system:serviceaccount:NS:NAME` → (NS, NAME).
fn service_account_of(user: &str) -> Option<(&str, &str)> {
    let (ns, name) = user.strip_prefix(SA_PREFIX)?.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// The user and groups a request asks to act as.
struct Impersonation {
    user: String,
    groups: Vec<String>,
}

impl Impersonation {
    fn from_headers(headers: &HeaderMap) -> Result<Option<Impersonation>, SimError> {
        let user = headers
            .get("impersonate-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let groups: Vec<String> = headers
            .get_all("impersonate-group")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        if user.is_empty() {
            if groups.is_empty() {
                return Ok(None);
            }
            // Worded as kube-apiserver prints its list of requested objects.
            let requested: Vec<String> = groups
                .iter()
                .map(|g| format!("{{Group  {g}    }}"))
                .collect();
            return Err(SimError::bad_request(format!(
                "requested [{}] without impersonating a user",
                requested.join(" ")
            )));
        }
        Ok(Some(Impersonation {
            user: user.to_string(),
            groups,
        }))
    }

    /// What the requester must be allowed to `impersonate`: the ServiceAccount or user,
    /// then every group.
    fn checks(&self) -> Vec<Attributes<'_>> {
        let impersonate = |resource, namespace, name| Attributes {
            verb: "impersonate",
            group: "",
            resource,
            subresource: None,
            namespace,
            name,
        };
        let mut out = vec![match service_account_of(&self.user) {
            Some((ns, name)) => impersonate("serviceaccounts", ns, name),
            None => impersonate("users", "", &self.user),
        }];
        out.extend(self.groups.iter().map(|g| impersonate("groups", "", g)));
        out
    }

    /// The impersonated user, with groups as kube-apiserver fills them in: a ServiceAccount
    /// without `Impersonate-Group` gets its groups, and everyone but `system:anonymous` is
    /// `system:authenticated` unless the groups say otherwise.
    fn into_user(self) -> UserInfo {
        let mut groups = self.groups;
        if groups.is_empty()
            && let Some((ns, name)) = service_account_of(&self.user)
        {
            return UserInfo::service_account(ns, name);
        }
        let (implied, unless) = if self.user == "system:anonymous" {
            ("system:unauthenticated", &["system:unauthenticated"][..])
        } else {
            (
                "system:authenticated",
                &["system:authenticated", "system:unauthenticated"][..],
            )
        };
        if !groups.iter().any(|g| unless.contains(&g.as_str())) {
            groups.push(implied.to_string());
        }
        UserInfo {
            user: self.user,
            groups,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(bearer_token(&headers(&[])), None);
    }

    #[test]
    fn impersonated_groups() {
        let sa = Impersonation::from_headers(&headers(&[(
            "impersonate-user",
            "system:serviceaccount:ns:sa",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(sa.checks()[0].resource, "serviceaccounts");
        assert_eq!(sa.into_user(), UserInfo::service_account("ns", "sa"));

        let alice = Impersonation::from_headers(&headers(&[
            ("impersonate-user", "alice"),
            ("impersonate-group", "devs"),
        ]))
        .unwrap()
        .unwrap();
        let checks: Vec<(&str, &str)> = alice
            .checks()
            .iter()
            .map(|a| (a.resource, a.name))
            .collect();
        assert_eq!(checks, vec![("users", "alice"), ("groups", "devs")]);
        assert_eq!(
            alice.into_user().groups,
            vec!["devs", "system:authenticated"]
        );

        let err = Impersonation::from_headers(&headers(&[("impersonate-group", "g")]))
            .err()
            .unwrap();
        assert_eq!(
            err.message,
            "requested [{Group  g    }] without impersonating a user"
        );
    }
}
