//! Who sends the requests the benchmark counts, and their credentials on a real control
//! plane.
//!
//! On a real server lifeboat and the kubectl runbook each authenticate as a ServiceAccount
//! of their own (bound to `cluster-admin`; a token from the TokenRequest API in a
//! kubeconfig), so the audit log tells their requests apart from the harness's, the
//! control plane's own controllers' and each other's (see `audit`). That is also how they
//! run for real: lifeboat as its ServiceAccount, an on-call engineer as their own user.
//! The simulator counts requests without a user, so there both use the admin kubeconfig.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::Value;

/// Namespace lifeboat runs in (mgmt), and of the actors' ServiceAccounts; the failover plan
/// and its alerts live here.
pub const LIFEBOAT_NS: &str = "lifeboat-system";

/// Why an actor's credentials could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{doing}: {source}")]
    Api {
        doing: String,
        #[source]
        source: kube::Error,
    },
    #[error("{doing}: {message}")]
    Setup { doing: String, message: String },
}

/// A client whose requests are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    /// The `lifeboat controller` process.
    Lifeboat,
    /// `runbook/failover.sh` (kubectl).
    Runbook,
}

impl Actor {
    pub const ALL: [Actor; 2] = [Actor::Lifeboat, Actor::Runbook];

    /// Its ServiceAccount (namespace [`LIFEBOAT_NS`]) on a real control plane.
    pub fn service_account(self) -> &'static str {
        match self {
            Actor::Lifeboat => "lifeboat",
            Actor::Runbook => "oncall",
        }
    }

    /// The user name the API server gives that ServiceAccount (and writes in its audit log).
    pub fn username(self) -> String {
        format!(
            "system:serviceaccount:{LIFEBOAT_NS}:{}",
            self.service_account()
        )
    }
}

/// Tokens live for a day: far longer than a benchmark run.
const TOKEN_SECONDS: i64 = 24 * 3600;
/// How long RBAC may take to allow a new binding (the authorizer reads from an informer).
const RBAC_TIMEOUT: Duration = Duration::from_secs(30);

fn api_err(doing: String) -> impl FnOnce(kube::Error) -> IdentityError {
    move |source| IdentityError::Api { doing, source }
}

/// Creates `actor`'s ServiceAccount with `cluster-admin` on the cluster of `admin`, waits
/// until RBAC allows it, and returns a kubeconfig for it: `admin_kubeconfig` with the user's
/// credentials replaced by a token of the ServiceAccount. [`LIFEBOAT_NS`] must exist.
pub async fn kubeconfig(
    admin: &Client,
    cluster: &str,
    admin_kubeconfig: &str,
    actor: Actor,
) -> Result<String, IdentityError> {
    let sa = actor.service_account();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), LIFEBOAT_NS);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(sa.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    accounts
        .create(&PostParams::default(), &account)
        .await
        .map_err(api_err(format!("create ServiceAccount {sa} on {cluster}")))?;
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(format!("bench-{sa}")),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: sa.into(),
            namespace: Some(LIFEBOAT_NS.into()),
            ..Default::default()
        }]),
    };
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&PostParams::default(), &binding)
        .await
        .map_err(api_err(format!("bind {sa} to cluster-admin on {cluster}")))?;
    wait_allowed(admin, cluster, &actor.username()).await?;
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(TOKEN_SECONDS),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .map_err(api_err(format!("request a token for {sa} on {cluster}")))?
        .status
        .map(|s| s.token)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(IdentityError::Setup {
            doing: format!("request a token for {sa} on {cluster}"),
            message: "the TokenRequest came back without a token".into(),
        });
    }
    with_token(admin_kubeconfig, &token).map_err(|message| IdentityError::Setup {
        doing: format!("write {sa}'s kubeconfig for {cluster}"),
        message,
    })
}

/// Waits until the authorizer lets `user` do anything (the binding is in its cache).
async fn wait_allowed(admin: &Client, cluster: &str, user: &str) -> Result<(), IdentityError> {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some("*".into()),
                group: Some("*".into()),
                resource: Some("*".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(admin.clone());
    let deadline = tokio::time::Instant::now() + RBAC_TIMEOUT;
    loop {
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(api_err(format!("review {user}'s access on {cluster}")))?;
        if answer.status.is_some_and(|s| s.allowed) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(IdentityError::Setup {
                doing: format!("bind {user} to cluster-admin on {cluster}"),
                message: format!("RBAC did not allow it within {} s", RBAC_TIMEOUT.as_secs()),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `kubeconfig` (YAML) with every user's credentials replaced by the bearer `token`.
pub fn with_token(kubeconfig: &str, token: &str) -> Result<String, String> {
    let mut kc: Value = serde_yaml::from_str(kubeconfig).map_err(|e| e.to_string())?;
    let users = kc["users"]
        .as_array_mut()
        .filter(|u| !u.is_empty())
        .ok_or("the kubeconfig has no users")?;
    for user in users {
        user["user"] = serde_json::json!({ "token": token });
    }
    serde_yaml::to_string(&kc).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_token_replaces_the_admin_credentials() {
        let admin = "apiVersion: v1\nkind: Config\nclusters:\n- name: db\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: db\n  context: {cluster: db, user: db-admin}\ncurrent-context: db\nusers:\n- name: db-admin\n  user:\n    token: admin-secret\n";
        let out = with_token(admin, "sa-token").unwrap();
        let kc: Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(
            kc["users"][0]["user"],
            serde_json::json!({"token": "sa-token"})
        );
        assert_eq!(kc["users"][0]["name"], "db-admin", "contexts still resolve");
        assert_eq!(
            kc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:1"
        );
        assert!(!out.contains("admin-secret"));
        assert!(with_token("users: []\n", "t").is_err());
    }

    #[test]
    fn actors_have_distinct_users() {
        assert_eq!(
            Actor::Lifeboat.username(),
            "system:serviceaccount:lifeboat-system:lifeboat"
        );
        assert_ne!(Actor::Lifeboat.username(), Actor::Runbook.username());
    }
}
