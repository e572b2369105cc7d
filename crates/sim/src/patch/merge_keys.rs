//! Which lists of a built-in kind a strategic merge patch merges, and by which key.
//!
//! Paths are written as the object keys leading to the list, joined by `/`, with list
//! elements transparent: `spec/containers/env` is the `env` list of any container of
//! `spec.containers`. The table covers the lists lifeboat and kubectl touch; it follows the
//! `patchStrategy`/`patchMergeKey` tags of the Kubernetes Go types.

use std::collections::HashMap;

/// How a strategic merge patch combines a list in the patch with the list in the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// Elements are objects identified by this key; a patch element updates the element
    /// with the same key, or is appended.
    MergeByKey(String),
    /// A list of scalars merged as a set (e.g. `metadata.finalizers`).
    MergePrimitives,
}

/// The list merge keys of one kind, and whether strategic merge patch applies to it at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeKeys {
    strategic: bool,
    lists: HashMap<String, ListStrategy>,
}

/// API groups whose kinds are compiled into kube-apiserver (strategic merge patch works).
fn is_builtin_group(group: &str) -> bool {
    matches!(
        group,
        "" | "core" | "apps" | "batch" | "autoscaling" | "policy" | "extensions"
    ) || group.ends_with(".k8s.io")
}

/// Lists of a PodSpec, relative to the PodSpec.
const POD_SPEC_LISTS: &[(&str, &str)] = &[
    ("containers", "name"),
    ("initContainers", "name"),
    ("ephemeralContainers", "name"),
    ("volumes", "name"),
    ("imagePullSecrets", "name"),
    ("hostAliases", "ip"),
    ("resourceClaims", "name"),
];

/// Lists of a Container, relative to the container.
const CONTAINER_LISTS: &[(&str, &str)] = &[
    ("env", "name"),
    ("ports", "containerPort"),
    ("volumeMounts", "mountPath"),
    ("volumeDevices", "devicePath"),
];

impl MergeKeys {
    /// No schema information: strategic merge patch is unsupported (415) and server-side
    /// apply replaces every list. What the simulator uses for custom resources.
    pub fn none() -> MergeKeys {
        MergeKeys::default()
    }

    /// The merge keys of a built-in kind. For a group that is not built into
    /// kube-apiserver (a custom resource) this is [`MergeKeys::none`].
    pub fn for_builtin(group: &str, kind: &str) -> MergeKeys {
        if !is_builtin_group(group) {
            return MergeKeys::none();
        }
        let mut keys = MergeKeys {
            strategic: true,
            lists: HashMap::new(),
        };
        keys.insert(
            "metadata/ownerReferences",
            ListStrategy::MergeByKey("uid".into()),
        );
        keys.insert("metadata/finalizers", ListStrategy::MergePrimitives);
        keys.insert("status/conditions", ListStrategy::MergeByKey("type".into()));
        let pod_spec_prefixes: &[&str] = match kind {
            "Pod" => &["spec"],
            "PodTemplate" => &["template/spec"],
            "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "Job"
            | "ReplicationController" => &["spec/template/spec"],
            "CronJob" => &["spec/jobTemplate/spec/template/spec"],
            _ => &[],
        };
        for prefix in pod_spec_prefixes {
            keys.add_pod_spec(prefix);
        }
        match kind {
            "Service" => {
                keys.insert("spec/ports", ListStrategy::MergeByKey("port".into()));
            }
            "Pod" => {
                keys.insert(
                    "status/containerStatuses",
                    ListStrategy::MergeByKey("name".into()),
                );
                keys.insert("status/podIPs", ListStrategy::MergeByKey("ip".into()));
            }
            "Node" => {
                keys.insert("status/addresses", ListStrategy::MergeByKey("type".into()));
                keys.insert("spec/taints", ListStrategy::MergeByKey("key".into()));
            }
            _ => {}
        }
        keys
    }

    /// Add (or override) the strategy of the list at `path` (keys joined by `/`).
    pub fn insert(&mut self, path: &str, strategy: ListStrategy) {
        self.lists.insert(path.to_string(), strategy);
    }

    /// Whether strategic merge patch is supported for this kind.
    pub fn supports_strategic(&self) -> bool {
        self.strategic
    }

    /// The strategy of the list at `path`, if it is not simply replaced.
    pub fn strategy(&self, path: &str) -> Option<&ListStrategy> {
        self.lists.get(path)
    }

    fn add_pod_spec(&mut self, prefix: &str) {
        for (list, key) in POD_SPEC_LISTS {
            self.insert(
                &format!("{prefix}/{list}"),
                ListStrategy::MergeByKey((*key).into()),
            );
        }
        for container_list in ["containers", "initContainers", "ephemeralContainers"] {
            for (list, key) in CONTAINER_LISTS {
                self.insert(
                    &format!("{prefix}/{container_list}/{list}"),
                    ListStrategy::MergeByKey((*key).into()),
                );
            }
        }
    }
}
