//! Impersonation: admin without headers; impersonated users allowed only by rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{api_error, client_as, start};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn impersonated_requests_are_checked_against_rules() {
    let (cluster, admin) = start("authz").await;
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("admin without impersonation may create");

    let user = "system:serviceaccount:default:sa";
    let as_sa = client_as(&cluster, user, &["system:serviceaccounts"]).await;
    let sa_cms: Api<ConfigMap> = Api::namespaced(as_sa.clone(), "default");

    // No rule: forbidden, worded like kube-apiserver.
    let status = api_error(sa_cms.get("c").await, "get without rule");
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        format!(
            "configmaps \"c\" is forbidden: User \"{user}\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
        )
    );

    cluster
        .authz()
        .allow(user, &["get", "list"], "", "configmaps", Some("default"));
    assert!(sa_cms.get("c").await.is_ok(), "get allowed by rule");
    assert!(
        sa_cms.list(&ListParams::default()).await.is_ok(),
        "list allowed by rule"
    );
    let status = api_error(
        sa_cms
            .patch(
                "c",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "2"}})),
            )
            .await,
        "patch not allowed",
    );
    assert_eq!(status.code, 403);
    assert!(
        status
            .message
            .contains("cannot patch resource \"configmaps\""),
        "{}",
        status.message
    );

    // Other namespaces are not covered by a namespaced rule.
    let other: Api<ConfigMap> = Api::namespaced(as_sa.clone(), "kube-system");
    let status = api_error(
        other.list(&ListParams::default()).await,
        "list in another namespace",
    );
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        format!(
            "configmaps is forbidden: User \"{user}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"kube-system\""
        )
    );

    // Group rules apply to impersonated groups; subresources are separate resources.
    cluster
        .authz()
        .allow("system:serviceaccounts", &["patch"], "", "pods", None);
    let pods: Api<Pod> = Api::namespaced(admin, "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let sa_pods: Api<Pod> = Api::namespaced(as_sa, "default");
    sa_pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("patch allowed via group rule");
    let status = api_error(
        sa_pods
            .patch_status(
                "p",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {}})),
            )
            .await,
        "status patch",
    );
    assert!(
        status
            .message
            .contains("cannot patch resource \"pods/status\""),
        "{}",
        status.message
    );
}
