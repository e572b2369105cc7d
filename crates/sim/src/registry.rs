//! The resources a simulated cluster serves: the built-in ones and those registered by
//! CustomResourceDefinitions.

use std::sync::Arc;

use serde_json::Value;

use crate::patch::MergeKeys;
use crate::structural::StructuralSchema;

/// One additional printer column of a CRD (or of a built-in table).
#[derive(Clone, Debug)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// JSONPath into the object (simple `.a.b` paths, `[n]` and `[?(@.k=="v")]` filters).
    pub json_path: String,
    /// Column description.
    pub description: String,
    /// 0 for the default view, > 0 for `-o wide`.
    pub priority: i64,
}

/// One served resource in one group-version.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    /// API group ("" for core).
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular resource name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
    /// Categories (`kubectl get all`).
    pub categories: Vec<String>,
    /// Has a `/status` subresource.
    pub has_status: bool,
    /// Defined by a CRD.
    pub custom: bool,
    /// Columns of `kubectl get` (server-side tables), besides Name and Age.
    pub printer_columns: Vec<PrinterColumn>,
    /// Structural schema of a CRD version.
    pub schema: Option<Arc<StructuralSchema>>,
    /// Whether `metadata.generation` is maintained.
    pub has_generation: bool,
    /// The raw `openAPIV3Schema` of a CRD version (published in OpenAPI v3).
    pub raw_schema: Option<Arc<Value>>,
}

impl ResourceInfo {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key of the group-resource (versions share storage).
    pub fn storage_key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// The schema published in OpenAPI v3, if known.
    pub fn openapi_schema(&self) -> Option<Value> {
        self.raw_schema.as_ref().map(|s| (**s).clone())
    }

    /// Strategic-merge keys of this kind.
    pub fn merge_keys(&self) -> MergeKeys {
        if self.custom {
            MergeKeys::none()
        } else {
            MergeKeys::for_builtin(&self.group, &self.kind)
        }
    }
}

fn col(name: &str, type_: &str, json_path: &str, priority: i64) -> PrinterColumn {
    PrinterColumn {
        name: name.to_string(),
        type_: type_.to_string(),
        json_path: json_path.to_string(),
        description: String::new(),
        priority,
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    has_status: bool,
    has_generation: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.to_string(),
        version: version.to_string(),
        plural: plural.to_string(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.to_string(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        has_status,
        custom: false,
        printer_columns: Vec::new(),
        schema: None,
        has_generation,
        raw_schema: None,
    }
}

/// The built-in resources every simulated cluster serves.
pub fn builtins() -> Vec<ResourceInfo> {
    let mut v = vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            true,
            false,
        ),
        builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
        ),
        builtin("", "v1", "secrets", "Secret", true, &[], false, false),
        builtin("", "v1", "services", "Service", true, &["svc"], true, false),
        builtin("", "v1", "pods", "Pod", true, &["po"], true, true),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
        ),
        builtin("", "v1", "events", "Event", true, &["ev"], false, false),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
            false,
        ),
        builtin("batch", "v1", "jobs", "Job", true, &[], true, true),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
            true,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "roles",
            "Role",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            false,
            false,
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
            true,
        ),
    ];
    for r in &mut v {
        match r.plural.as_str() {
            "pods" | "services" | "deployments" | "jobs" => r.categories = vec!["all".into()],
            _ => {}
        }
        r.printer_columns = match r.plural.as_str() {
            "namespaces" => vec![col("Status", "string", ".status.phase", 0)],
            "configmaps" => vec![col("Data", "integer", "#data", 0)],
            "secrets" => vec![
                col("Type", "string", ".type", 0),
                col("Data", "integer", "#data", 0),
            ],
            "services" => vec![
                col("Type", "string", ".spec.type", 0),
                col("Cluster-IP", "string", ".spec.clusterIP", 0),
                col("External-IP", "string", "#externalip", 0),
                col("Port(s)", "string", "#ports", 0),
            ],
            "pods" => vec![
                col("Ready", "string", "#podready", 0),
                col("Status", "string", "#podstatus", 0),
                col("Restarts", "string", "#restarts", 0),
            ],
            "serviceaccounts" => vec![col("Secrets", "integer", "#secrets", 0)],
            "jobs" => vec![
                col("Status", "string", "#jobstatus", 0),
                col("Completions", "string", "#completions", 0),
                col("Duration", "string", "#jobduration", 0),
            ],
            "deployments" => vec![
                col("Ready", "string", "#deployready", 0),
                col("Up-to-date", "integer", ".status.updatedReplicas", 0),
                col("Available", "integer", ".status.availableReplicas", 0),
            ],
            "leases" => vec![col("Holder", "string", ".spec.holderIdentity", 0)],
            // kube-apiserver prints the creation time itself for roles, not an age.
            "roles" | "clusterroles" => {
                vec![col(
                    "Created At",
                    "string",
                    ".metadata.creationTimestamp",
                    0,
                )]
            }
            "rolebindings" | "clusterrolebindings" => vec![
                col("Role", "string", "#roleref", 0),
                col("Age", "date", ".metadata.creationTimestamp", 0),
                col("Users", "string", "#subjects:User", 1),
                col("Groups", "string", "#subjects:Group", 1),
                col("ServiceAccounts", "string", "#subjects:ServiceAccount", 1),
            ],
            "customresourcedefinitions" => {
                vec![col("Created At", "date", ".metadata.creationTimestamp", 0)]
            }
            "events" if r.group.is_empty() => vec![
                col("Last Seen", "date", ".lastTimestamp", 0),
                col("Type", "string", ".type", 0),
                col("Reason", "string", ".reason", 0),
                col("Object", "string", "#object", 0),
                col("Message", "string", ".message", 0),
            ],
            "events" => vec![
                col("Type", "string", ".type", 0),
                col("Reason", "string", ".reason", 0),
            ],
            _ => Vec::new(),
        };
    }
    v
}

/// Parse a CRD object into the resources it serves (one per served version), or the
/// validation causes that make kube-apiserver reject it.
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceInfo>, Vec<crate::error::Cause>> {
    use crate::error::cause;
    let mut causes = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_ascii_lowercase());
    let scope = spec["scope"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(cause("FieldValueRequired", "spec.group", "Required value"));
    } else if !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: \"{group}\": should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if kind.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
        ));
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let short_names = strings(&names["shortNames"]);
    let categories = strings(&names["categories"]);
    let mut out = Vec::new();
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: null: must have exactly one version marked as storage version",
        ));
    }
    let storage_count = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count();
    if !versions.is_empty() && storage_count != 1 {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            format!(
                "Invalid value: []apiextensions.CustomResourceDefinitionVersion{{...}}: must have exactly one version marked as storage version (found {storage_count})"
            ),
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let vname = v["name"].as_str().unwrap_or_default().to_string();
        if vname.is_empty() {
            causes.push(cause(
                "FieldValueRequired",
                &format!("spec.versions[{i}].name"),
                "Required value",
            ));
            continue;
        }
        let schema_json = &v["schema"]["openAPIV3Schema"];
        let schema = if schema_json.is_null() {
            causes.push(cause(
                "FieldValueRequired",
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "Required value: schemas are required",
            ));
            None
        } else {
            match StructuralSchema::from_openapi(schema_json) {
                Ok(s) => Some(Arc::new(s)),
                Err(reason) => {
                    causes.push(cause(
                        "FieldValueInvalid",
                        &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                        reason,
                    ));
                    None
                }
            }
        };
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        let has_status = v["subresources"]["status"].is_object();
        let printer_columns = v["additionalPrinterColumns"]
            .as_array()
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: c["name"].as_str().unwrap_or_default().to_string(),
                        type_: c["type"].as_str().unwrap_or("string").to_string(),
                        json_path: c["jsonPath"].as_str().unwrap_or_default().to_string(),
                        description: c["description"].as_str().unwrap_or_default().to_string(),
                        priority: c["priority"].as_i64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(ResourceInfo {
            group: group.clone(),
            version: vname,
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced: scope == "Namespaced",
            short_names: short_names.clone(),
            categories: categories.clone(),
            has_status,
            custom: true,
            printer_columns,
            schema,
            has_generation: true,
            raw_schema: (!schema_json.is_null()).then(|| Arc::new(schema_json.clone())),
        });
    }
    if causes.is_empty() {
        Ok(out)
    } else {
        Err(causes)
    }
}
