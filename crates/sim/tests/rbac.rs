//! ServiceAccount tokens and RBAC, through kube clients: the TokenRequest subresource,
//! bearer-token clients, Roles and ClusterRoles (aggregated too) with their bindings, and
//! the authorization of impersonation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{api_error, client_with_token, config_with_token, start};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use lifeboat_sim::tokens::API_AUDIENCE;
use serde_json::{Value, json};

/// Create any object as admin (RBAC kinds have no typed helper here).
async fn create(admin: &Client, obj: Value) {
    let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (
            String::new(),
            obj["apiVersion"].as_str().unwrap().to_string(),
        ),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, obj["kind"].as_str().unwrap());
    let ar = ApiResource::from_gvk(&gvk);
    let d: DynamicObject = serde_json::from_value(obj).unwrap();
    let api: Api<DynamicObject> = match d.metadata.namespace.as_deref() {
        Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
        None => Api::all_with(admin.clone(), &ar),
    };
    api.create(&Default::default(), &d)
        .await
        .unwrap_or_else(|e| panic!("create {}: {e}", ar.kind));
}

async fn namespace(admin: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(admin.clone())
        .create(&Default::default(), &ns)
        .await
        .unwrap();
}

async fn service_account(admin: &Client, namespace: &str, name: &str) {
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create(&Default::default(), &sa)
        .await
        .unwrap();
}

/// A token for the ServiceAccount, as `kubectl create token` asks for it.
async fn token(admin: &Client, namespace: &str, name: &str) -> String {
    Api::<ServiceAccount>::namespaced(admin.clone(), namespace)
        .create_token_request(name, &Default::default(), &TokenRequest::default())
        .await
        .unwrap()
        .status
        .unwrap()
        .token
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name}, "rules": rules,
    })
}

/// A binding (RoleBinding with a namespace, else ClusterRoleBinding) of one ServiceAccount.
fn binding(
    name: &str,
    namespace: Option<&str>,
    role_kind: &str,
    role: &str,
    sa: (&str, &str),
) -> Value {
    let mut meta = json!({"name": name});
    let kind = match namespace {
        Some(ns) => {
            meta["namespace"] = json!(ns);
            "RoleBinding"
        }
        None => "ClusterRoleBinding",
    };
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "namespace": sa.0, "name": sa.1}],
    })
}

#[tokio::test]
async fn token_request_then_a_role_binding_grants_access() {
    let (cluster, admin) = start("rbac-token").await;
    service_account(&admin, "default", "robot").await;
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    Api::<ConfigMap>::namespaced(admin.clone(), "default")
        .create(&Default::default(), &cm)
        .await
        .unwrap();

    // The TokenRequest answer, with kube-apiserver's defaults.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    let tr = sas
        .create_token_request("robot", &Default::default(), &TokenRequest::default())
        .await
        .unwrap();
    assert_eq!(tr.metadata.name.as_deref(), Some("robot"));
    assert_eq!(tr.spec.audiences, vec![API_AUDIENCE.to_string()]);
    assert_eq!(tr.spec.expiration_seconds, Some(3600));
    let status = tr.status.unwrap();
    assert!(status.token.len() >= 32, "an opaque random token");
    let left = status.expiration_timestamp.0.as_second() - jiff::Timestamp::now().as_second();
    assert!((3590..=3600).contains(&left), "expires in an hour: {left}s");

    let status = api_error(
        sas.create_token_request("ghost", &Default::default(), &TokenRequest::default())
            .await,
        "token of a missing ServiceAccount",
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "serviceaccounts \"ghost\" not found")
    );
    let short = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(60),
            ..Default::default()
        },
        ..Default::default()
    };
    let status = api_error(
        sas.create_token_request("robot", &Default::default(), &short)
            .await,
        "a token shorter than 10 minutes",
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (
            422,
            "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        )
    );

    // Without RBAC the ServiceAccount may do nothing.
    let robot = client_with_token(&cluster, &token(&admin, "default", "robot").await).await;
    let robot_cms: Api<ConfigMap> = Api::namespaced(robot.clone(), "default");
    let status = api_error(robot_cms.get("c").await, "get without RBAC");
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        "configmaps \"c\" is forbidden: User \"system:serviceaccount:default:robot\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );

    // A Role and a RoleBinding (subject namespace left to default to the binding's).
    create(
        &admin,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "cm-reader", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        }),
    )
    .await;
    create(
        &admin,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "robot-reads", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
        }),
    )
    .await;
    assert_eq!(
        robot_cms.get("c").await.unwrap().metadata.name.as_deref(),
        Some("c")
    );
    assert_eq!(
        robot_cms
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let status = api_error(
        robot_cms
            .patch(
                "c",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "1"}})),
            )
            .await,
        "patch is not in the Role",
    );
    assert!(
        status
            .message
            .contains("cannot patch resource \"configmaps\""),
        "{}",
        status.message
    );
    let status = api_error(
        Api::<ConfigMap>::namespaced(robot, "kube-system")
            .list(&ListParams::default())
            .await,
        "a RoleBinding covers its namespace only",
    );
    assert_eq!(status.code, 403);
}

#[tokio::test]
async fn unknown_expired_or_orphaned_tokens_are_unauthorized() {
    let (cluster, admin) = start("rbac-unauthorized").await;
    let unauthorized = |r: Result<_, kube::Error>, what: &str| {
        let status = api_error(r, what);
        assert_eq!(
            (status.code, status.reason.as_str(), status.message.as_str()),
            (401, "Unauthorized", "Unauthorized"),
            "{what}"
        );
    };
    let stranger = client_with_token(&cluster, "not-a-token").await;
    unauthorized(
        Api::<ConfigMap>::namespaced(stranger.clone(), "default")
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "unknown token",
    );
    assert!(
        stranger.apiserver_version().await.is_err(),
        "discovery needs a valid token too"
    );

    // A token for another audience does not authenticate to the API server.
    service_account(&admin, "default", "robot").await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    let vault = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["vault".into()],
            ..Default::default()
        },
        ..Default::default()
    };
    let vault_token = sas
        .create_token_request("robot", &Default::default(), &vault)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let for_vault = client_with_token(&cluster, &vault_token).await;
    unauthorized(
        Api::<ConfigMap>::namespaced(for_vault, "default")
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "token for another audience",
    );

    // Deleting the ServiceAccount revokes its tokens; discovery works until then.
    let robot = client_with_token(&cluster, &token(&admin, "default", "robot").await).await;
    assert!(robot.apiserver_version().await.is_ok());
    sas.delete("robot", &Default::default()).await.unwrap();
    unauthorized(
        Api::<ConfigMap>::namespaced(robot, "default")
            .list(&ListParams::default())
            .await
            .map(|_| ()),
        "token of a deleted ServiceAccount",
    );
    let stats = cluster.stats();
    assert!(
        stats.counts.get(&("list".into(), "configmaps".into(), 401)) == Some(&3),
        "refused requests are counted: {stats}"
    );
}

#[tokio::test]
async fn cluster_role_bindings_grant_every_namespace() {
    let (cluster, admin) = start("rbac-crb").await;
    service_account(&admin, "default", "robot").await;
    let robot = client_with_token(&cluster, &token(&admin, "default", "robot").await).await;
    create(
        &admin,
        cluster_role(
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
        ),
    )
    .await;

    // A ClusterRole bound in one namespace grants only there.
    create(
        &admin,
        binding(
            "robot-pods",
            Some("kube-system"),
            "ClusterRole",
            "pod-reader",
            ("default", "robot"),
        ),
    )
    .await;
    let lp = ListParams::default();
    assert!(
        Api::<Pod>::namespaced(robot.clone(), "kube-system")
            .list(&lp)
            .await
            .is_ok()
    );
    let status = api_error(
        Api::<Pod>::all(robot.clone()).list(&lp).await,
        "cluster-wide list",
    );
    assert_eq!(
        status.message,
        "pods is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
    );

    // A ClusterRoleBinding grants in every namespace and at the cluster scope.
    create(
        &admin,
        binding(
            "robot-pods",
            None,
            "ClusterRole",
            "pod-reader",
            ("default", "robot"),
        ),
    )
    .await;
    for ns in ["default", "kube-public"] {
        assert!(
            Api::<Pod>::namespaced(robot.clone(), ns)
                .list(&lp)
                .await
                .is_ok(),
            "{ns}"
        );
    }
    assert!(Api::<Pod>::all(robot.clone()).list(&lp).await.is_ok());

    // A binding to a role that does not exist is named in the refusal, as RBAC does.
    create(
        &admin,
        binding(
            "robot-missing",
            None,
            "ClusterRole",
            "missing",
            ("default", "robot"),
        ),
    )
    .await;
    let status = api_error(
        Api::<ConfigMap>::namespaced(robot, "default")
            .list(&lp)
            .await,
        "nothing grants configmaps",
    );
    assert_eq!(
        status.message,
        "configmaps is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\": RBAC: clusterrole.rbac.authorization.k8s.io \"missing\" not found"
    );
}

#[tokio::test]
async fn aggregated_cluster_roles_take_the_rules_of_matching_roles() {
    let (cluster, admin) = start("rbac-aggregate").await;
    service_account(&admin, "default", "robot").await;
    let robot = client_with_token(&cluster, &token(&admin, "default", "robot").await).await;
    create(
        &admin,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "step-executor"},
            "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"example.dev/aggregate-to-step-executor": "true"}},
            ]},
            "rules": [],
        }),
    )
    .await;
    create(
        &admin,
        binding(
            "robot-steps",
            None,
            "ClusterRole",
            "step-executor",
            ("default", "robot"),
        ),
    )
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(robot.clone(), "default");
    let lp = ListParams::default();
    assert_eq!(
        api_error(cms.list(&lp).await, "nothing aggregated yet").code,
        403
    );

    // Matching labels contribute their rules; others do not.
    let mut unlabelled = cluster_role(
        "pods-not-aggregated",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
    );
    unlabelled["metadata"]["labels"] = json!({"example.dev/aggregate-to-step-executor": "false"});
    create(&admin, unlabelled).await;
    let mut labelled = cluster_role(
        "configmaps-for-steps",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
    );
    labelled["metadata"]["labels"] = json!({"example.dev/aggregate-to-step-executor": "true"});
    create(&admin, labelled).await;
    assert!(
        cms.list(&lp).await.is_ok(),
        "rule of a matching ClusterRole"
    );
    assert_eq!(
        api_error(
            Api::<Pod>::namespaced(robot, "default").list(&lp).await,
            "rule of a ClusterRole whose labels do not match",
        )
        .code,
        403
    );
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_permission() {
    let (cluster, admin) = start("rbac-impersonate").await;
    namespace(&admin, "lifeboat-system").await;
    service_account(&admin, "lifeboat-system", "lifeboat-controller").await;
    service_account(&admin, "default", "robot").await;
    let controller = "system:serviceaccount:lifeboat-system:lifeboat-controller";
    let token = token(&admin, "lifeboat-system", "lifeboat-controller").await;
    let acting_as = |user: &str, groups: &[&str]| {
        let cluster = cluster.clone();
        let token = token.clone();
        let user = user.to_string();
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        async move {
            let mut cfg = config_with_token(&cluster, &token).await;
            cfg.auth_info.impersonate = Some(user);
            if !groups.is_empty() {
                cfg.auth_info.impersonate_groups = Some(groups);
            }
            Api::<ConfigMap>::namespaced(Client::try_from(cfg).unwrap(), "default")
        }
    };
    let lp = ListParams::default();

    // Without `impersonate`, neither users nor ServiceAccounts.
    let status = api_error(
        acting_as("alice", &[]).await.list(&lp).await,
        "impersonate a user",
    );
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            "users \"alice\" is forbidden: User \"{controller}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        )
    );
    let robot = "system:serviceaccount:default:robot";
    let status = api_error(
        acting_as(robot, &[]).await.list(&lp).await,
        "impersonate a ServiceAccount",
    );
    assert_eq!(
        status.message,
        format!(
            "serviceaccounts \"robot\" is forbidden: User \"{controller}\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"default\""
        )
    );

    // `impersonate` on serviceaccounts (as lifeboat's controller has it): the request then
    // runs as the ServiceAccount, with that account's groups and permissions.
    create(
        &admin,
        cluster_role(
            "impersonate-sas",
            json!([{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}]),
        ),
    )
    .await;
    create(
        &admin,
        binding(
            "controller-impersonates",
            None,
            "ClusterRole",
            "impersonate-sas",
            ("lifeboat-system", "lifeboat-controller"),
        ),
    )
    .await;
    let as_robot = acting_as(robot, &[]).await;
    let status = api_error(as_robot.list(&lp).await, "robot may not list");
    assert_eq!(
        status.message,
        format!(
            "configmaps is forbidden: User \"{robot}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
        )
    );
    create(
        &admin,
        cluster_role(
            "sa-cm-reader",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]),
        ),
    )
    .await;
    create(
        &admin,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "all-sas-read", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "sa-cm-reader"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:serviceaccounts:default"}],
        }),
    )
    .await;
    assert!(
        as_robot.list(&lp).await.is_ok(),
        "the impersonated ServiceAccount has its namespace group"
    );

    // Groups need their own permission, each by name: allowing only
    // `system:serviceaccounts` does not cover `system:serviceaccounts:default`.
    create(
        &admin,
        cluster_role(
            "impersonate-sa-group",
            json!([{
                "apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"],
                "resourceNames": ["system:serviceaccounts"],
            }]),
        ),
    )
    .await;
    create(
        &admin,
        binding(
            "controller-impersonates-group",
            None,
            "ClusterRole",
            "impersonate-sa-group",
            ("lifeboat-system", "lifeboat-controller"),
        ),
    )
    .await;
    let status = api_error(
        acting_as(
            robot,
            &["system:serviceaccounts", "system:serviceaccounts:default"],
        )
        .await
        .list(&lp)
        .await,
        "a group the controller may not impersonate",
    );
    assert_eq!(
        status.message,
        format!(
            "groups \"system:serviceaccounts:default\" is forbidden: User \"{controller}\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
        )
    );
    // With only the allowed group the impersonation passes, but the request then lacks
    // the namespace group that granted the read.
    let status = api_error(
        acting_as(robot, &["system:serviceaccounts"])
            .await
            .list(&lp)
            .await,
        "explicit groups replace the ServiceAccount's",
    );
    assert!(
        status.message.starts_with(&format!(
            "configmaps is forbidden: User \"{robot}\" cannot list"
        )),
        "{}",
        status.message
    );

    // Cluster-admin may impersonate anyone.
    let mut cfg = common::config_for(&cluster).await;
    cfg.auth_info.impersonate = Some(robot.to_string());
    let admin_as_robot: Api<ConfigMap> = Api::namespaced(Client::try_from(cfg).unwrap(), "default");
    assert!(admin_as_robot.list(&lp).await.is_ok());
}
