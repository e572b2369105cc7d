//! The known fields of the built-in kinds, so unknown fields are dropped (or rejected
//! under `fieldValidation=Strict`) the way kube-apiserver's typed decoding does.
//!
//! Only the levels lifeboat and kubectl write are described (top level, `metadata`, the
//! specs of pods, jobs, deployments, services, leases and namespaces, containers, RBAC
//! rules, subjects and role references); below them everything is kept.

use serde_json::Value;

/// A node of the field tree.
#[derive(Clone, Copy)]
pub enum Node {
    /// Anything goes below here.
    Any,
    /// An object with these fields.
    Obj(&'static [(&'static str, Node)]),
    /// A list of elements of this shape.
    List(&'static Node),
}

use Node::{Any, List, Obj};

const OBJECT_META: Node = Obj(&[
    ("name", Any),
    ("generateName", Any),
    ("namespace", Any),
    ("selfLink", Any),
    ("uid", Any),
    ("resourceVersion", Any),
    ("generation", Any),
    ("creationTimestamp", Any),
    ("deletionTimestamp", Any),
    ("deletionGracePeriodSeconds", Any),
    ("labels", Any),
    ("annotations", Any),
    ("ownerReferences", Any),
    ("finalizers", Any),
    ("managedFields", Any),
]);

const CONTAINER: Node = Obj(&[
    ("name", Any),
    ("image", Any),
    ("command", Any),
    ("args", Any),
    ("workingDir", Any),
    ("ports", Any),
    ("envFrom", Any),
    ("env", Any),
    ("resources", Any),
    ("resizePolicy", Any),
    ("restartPolicy", Any),
    ("volumeMounts", Any),
    ("volumeDevices", Any),
    ("livenessProbe", Any),
    ("readinessProbe", Any),
    ("startupProbe", Any),
    ("lifecycle", Any),
    ("terminationMessagePath", Any),
    ("terminationMessagePolicy", Any),
    ("imagePullPolicy", Any),
    ("securityContext", Any),
    ("stdin", Any),
    ("stdinOnce", Any),
    ("tty", Any),
]);

const POD_SPEC: Node = Obj(&[
    ("volumes", Any),
    ("initContainers", List(&CONTAINER)),
    ("containers", List(&CONTAINER)),
    ("ephemeralContainers", Any),
    ("restartPolicy", Any),
    ("terminationGracePeriodSeconds", Any),
    ("activeDeadlineSeconds", Any),
    ("dnsPolicy", Any),
    ("nodeSelector", Any),
    ("serviceAccountName", Any),
    ("serviceAccount", Any),
    ("automountServiceAccountToken", Any),
    ("nodeName", Any),
    ("hostNetwork", Any),
    ("hostPID", Any),
    ("hostIPC", Any),
    ("shareProcessNamespace", Any),
    ("securityContext", Any),
    ("imagePullSecrets", Any),
    ("hostname", Any),
    ("subdomain", Any),
    ("affinity", Any),
    ("schedulerName", Any),
    ("tolerations", Any),
    ("hostAliases", Any),
    ("priorityClassName", Any),
    ("priority", Any),
    ("dnsConfig", Any),
    ("readinessGates", Any),
    ("runtimeClassName", Any),
    ("enableServiceLinks", Any),
    ("preemptionPolicy", Any),
    ("overhead", Any),
    ("topologySpreadConstraints", Any),
    ("setHostnameAsFQDN", Any),
    ("os", Any),
    ("hostUsers", Any),
    ("schedulingGates", Any),
    ("resourceClaims", Any),
    ("resources", Any),
]);

const POD_TEMPLATE: Node = Obj(&[("metadata", OBJECT_META), ("spec", POD_SPEC)]);

const JOB_SPEC: Node = Obj(&[
    ("parallelism", Any),
    ("completions", Any),
    ("activeDeadlineSeconds", Any),
    ("podFailurePolicy", Any),
    ("successPolicy", Any),
    ("backoffLimit", Any),
    ("backoffLimitPerIndex", Any),
    ("maxFailedIndexes", Any),
    ("selector", Any),
    ("manualSelector", Any),
    ("template", POD_TEMPLATE),
    ("ttlSecondsAfterFinished", Any),
    ("completionMode", Any),
    ("suspend", Any),
    ("podReplacementPolicy", Any),
    ("managedBy", Any),
]);

const DEPLOYMENT_SPEC: Node = Obj(&[
    ("replicas", Any),
    ("selector", Any),
    ("template", POD_TEMPLATE),
    ("strategy", Any),
    ("minReadySeconds", Any),
    ("revisionHistoryLimit", Any),
    ("paused", Any),
    ("progressDeadlineSeconds", Any),
]);

const SERVICE_SPEC: Node = Obj(&[
    ("ports", Any),
    ("selector", Any),
    ("clusterIP", Any),
    ("clusterIPs", Any),
    ("type", Any),
    ("externalIPs", Any),
    ("sessionAffinity", Any),
    ("loadBalancerIP", Any),
    ("loadBalancerSourceRanges", Any),
    ("externalName", Any),
    ("externalTrafficPolicy", Any),
    ("healthCheckNodePort", Any),
    ("publishNotReadyAddresses", Any),
    ("sessionAffinityConfig", Any),
    ("ipFamilies", Any),
    ("ipFamilyPolicy", Any),
    ("allocateLoadBalancerNodePorts", Any),
    ("loadBalancerClass", Any),
    ("internalTrafficPolicy", Any),
    ("trafficDistribution", Any),
]);

const LEASE_SPEC: Node = Obj(&[
    ("holderIdentity", Any),
    ("leaseDurationSeconds", Any),
    ("acquireTime", Any),
    ("renewTime", Any),
    ("leaseTransitions", Any),
    ("strategy", Any),
    ("preferredHolder", Any),
]);

const POLICY_RULE: Node = Obj(&[
    ("verbs", Any),
    ("apiGroups", Any),
    ("resources", Any),
    ("resourceNames", Any),
    ("nonResourceURLs", Any),
]);

const SUBJECT: Node = Obj(&[
    ("kind", Any),
    ("apiGroup", Any),
    ("name", Any),
    ("namespace", Any),
]);

const ROLE_REF: Node = Obj(&[("apiGroup", Any), ("kind", Any), ("name", Any)]);

macro_rules! kind {
    ($($field:expr),* $(,)?) => {
        Obj(&[("apiVersion", Any), ("kind", Any), ("metadata", OBJECT_META), $($field),*])
    };
}

/// The field tree of a built-in resource, if described.
pub fn schema(group: &str, plural: &str) -> Option<Node> {
    Some(match (group, plural) {
        ("", "configmaps") => kind!(("data", Any), ("binaryData", Any), ("immutable", Any)),
        ("", "secrets") => kind!(
            ("data", Any),
            ("stringData", Any),
            ("type", Any),
            ("immutable", Any)
        ),
        ("", "pods") => kind!(("spec", POD_SPEC), ("status", Any)),
        ("", "services") => kind!(("spec", SERVICE_SPEC), ("status", Any)),
        ("", "namespaces") => kind!(("spec", Obj(&[("finalizers", Any)])), ("status", Any)),
        ("", "serviceaccounts") => kind!(
            ("secrets", Any),
            ("imagePullSecrets", Any),
            ("automountServiceAccountToken", Any)
        ),
        ("batch", "jobs") => kind!(("spec", JOB_SPEC), ("status", Any)),
        ("apps", "deployments") => kind!(("spec", DEPLOYMENT_SPEC), ("status", Any)),
        ("coordination.k8s.io", "leases") => kind!(("spec", LEASE_SPEC)),
        ("rbac.authorization.k8s.io", "roles") => kind!(("rules", List(&POLICY_RULE))),
        ("rbac.authorization.k8s.io", "clusterroles") => {
            kind!(("rules", List(&POLICY_RULE)), ("aggregationRule", Any))
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            kind!(("subjects", List(&SUBJECT)), ("roleRef", ROLE_REF))
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            kind!(("spec", Any), ("status", Any))
        }
        _ => return None,
    })
}

/// Drop fields the tree does not know; returns their paths (`spec.containers[0].imagee`).
pub fn prune(node: Node, v: &mut Value, path: &str, unknown: &mut Vec<String>) {
    match (node, v) {
        (Obj(fields), Value::Object(m)) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match fields.iter().find(|(name, _)| *name == k) {
                    None => {
                        m.remove(&k);
                        unknown.push(p);
                    }
                    Some((_, child)) => {
                        if let Some(cv) = m.get_mut(&k) {
                            prune(*child, cv, &p, unknown);
                        }
                    }
                }
            }
        }
        (List(elem), Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                prune(*elem, item, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_pod_fields_are_dropped() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "bogus": 1},
            "spec": {"containers": [{"name": "c", "imagee": "x", "env": [{"name": "A", "whatever": 1}]}]},
            "extra": true,
        });
        let mut unknown = Vec::new();
        prune(schema("", "pods").unwrap(), &mut pod, "", &mut unknown);
        assert_eq!(
            unknown,
            vec!["metadata.bogus", "spec.containers[0].imagee", "extra"]
        );
        assert!(
            pod["spec"]["containers"][0]["env"][0]["whatever"] == 1,
            "below described levels everything is kept"
        );
    }
}
