//! The cluster registration format: a Secret in lifeboat's namespace, labelled
//! `recovery.elotl.co/secret-type: cluster` (the Argo CD convention), carrying the cluster's
//! name and a kubeconfig.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;

use crate::{CLUSTER_SECRET_TYPE, LABEL_CLUSTER_SECRET};

/// Data key holding the cluster's name (what steps write in `cluster:`).
pub const KEY_NAME: &str = "name";
/// Data key holding the kubeconfig (YAML) lifeboat uses to reach the cluster.
pub const KEY_KUBECONFIG: &str = "kubeconfig";

/// The Secret `secret_name` in `namespace` registering `cluster_name` with `kubeconfig`.
pub fn cluster_secret(
    secret_name: &str,
    namespace: &str,
    cluster_name: &str,
    kubeconfig: &str,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                LABEL_CLUSTER_SECRET.to_string(),
                CLUSTER_SECRET_TYPE.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                KEY_NAME.to_string(),
                ByteString(cluster_name.as_bytes().to_vec()),
            ),
            (
                KEY_KUBECONFIG.to_string(),
                ByteString(kubeconfig.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    }
}
