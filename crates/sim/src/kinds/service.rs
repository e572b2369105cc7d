//! Services: required ports, kube-apiserver's defaults, a cluster IP allocated once.

use serde_json::{Value, json};

use super::Write;
use crate::error::{SimError, cause};

/// Defaults and validates a Service being written.
pub(super) fn prepare(w: &Write<'_>, obj: &mut Value) -> Result<(), SimError> {
    if obj["spec"]["type"].is_null() {
        obj["spec"]["type"] = json!("ClusterIP");
    }
    let svc_type = obj["spec"]["type"].as_str().unwrap_or_default().to_string();
    let headless = obj["spec"]["clusterIP"] == "None";
    let mut causes = Vec::new();
    if svc_type != "ExternalName"
        && !headless
        && obj["spec"]["ports"].as_array().is_none_or(Vec::is_empty)
    {
        causes.push(cause("FieldValueRequired", "spec.ports", "Required value"));
    }
    let ingress = obj["status"]["loadBalancer"]["ingress"]
        .as_array()
        .is_some_and(|i| !i.is_empty());
    if w.status && ingress && svc_type != "LoadBalancer" {
        causes.push(cause(
            "FieldValueForbidden",
            "status.loadBalancer.ingress",
            "Forbidden: may only be used when `spec.type` is 'LoadBalancer'",
        ));
    }
    if !causes.is_empty() {
        return Err(w.invalid(causes));
    }
    // kube-apiserver's defaults and its IP family allocation (IPv4 only here).
    if obj["spec"]["sessionAffinity"].is_null() {
        obj["spec"]["sessionAffinity"] = json!("None");
    }
    if svc_type != "ExternalName" {
        for (k, d) in [
            ("internalTrafficPolicy", json!("Cluster")),
            ("ipFamilyPolicy", json!("SingleStack")),
            ("ipFamilies", json!(["IPv4"])),
        ] {
            if obj["spec"][k].is_null() {
                obj["spec"][k] = d;
            }
        }
    }
    // As kube-apiserver defaults them: protocol TCP, targetPort = port.
    if let Some(ports) = obj["spec"]["ports"].as_array_mut() {
        for port in ports {
            if port["protocol"].is_null() {
                port["protocol"] = json!("TCP");
            }
            if port["targetPort"].is_null() && !port["port"].is_null() {
                port["targetPort"] = port["port"].clone();
            }
        }
    }
    match w.old {
        None => {
            if obj["spec"]["clusterIP"].is_null() {
                let ip = format!(
                    "10.96.{}.{}",
                    rand::random_range(0..=255u8),
                    rand::random_range(1..=254u8)
                );
                obj["spec"]["clusterIP"] = Value::String(ip.clone());
                obj["spec"]["clusterIPs"] = json!([ip]);
            }
        }
        Some(o) => {
            if obj["spec"]["clusterIP"].is_null() {
                obj["spec"]["clusterIP"] = o["spec"]["clusterIP"].clone();
                obj["spec"]["clusterIPs"] = o["spec"]["clusterIPs"].clone();
            }
        }
    }
    if w.old.is_none() || !obj["status"].is_object() {
        obj["status"] = json!({"loadBalancer": {}});
    } else if obj["status"]["loadBalancer"].is_null() {
        // Not omitted when empty (a struct, not a pointer, in kube-apiserver).
        obj["status"]["loadBalancer"] = json!({});
    }
    Ok(())
}
