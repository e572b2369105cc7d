//! Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`.

use serde_json::{Value, json};

use crate::registry::{PrinterColumn, ResourceInfo};

/// `duration.HumanDuration` of Kubernetes: `5s`, `3m20s`, `2d4h`…
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Seconds since an RFC 3339 timestamp.
fn since(ts: &str) -> Option<i64> {
    let t: jiff::Timestamp = ts.parse().ok()?;
    Some(jiff::Timestamp::now().as_second() - t.as_second())
}

fn age(ts: &Value) -> Value {
    match ts.as_str().and_then(since) {
        Some(s) => Value::String(human_duration(s)),
        None => Value::String("<unknown>".into()),
    }
}

/// Evaluate a simple JSONPath (`.a.b`, `[0]`, `[*]`, `[?(@.k=="v")]`) against an object.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur: Vec<&Value> = vec![obj];
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            rest = &r[end..];
            if key.is_empty() {
                continue;
            }
            cur = cur.into_iter().filter_map(|v| v.get(key)).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Vec::new();
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            if inner == "*" {
                cur = cur
                    .into_iter()
                    .flat_map(|v| match v {
                        Value::Array(a) => a.iter().collect::<Vec<_>>(),
                        Value::Object(m) => m.values().collect(),
                        _ => Vec::new(),
                    })
                    .collect();
            } else if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let Some((k, v)) = f.split_once("==") else {
                    return Vec::new();
                };
                let want = v.trim().trim_matches(|c| c == '"' || c == '\'');
                let k = k.trim();
                cur = cur
                    .into_iter()
                    .filter_map(Value::as_array)
                    .flat_map(|a| a.iter())
                    .filter(|e| {
                        let mut x = *e;
                        for seg in k.split('.') {
                            x = &x[seg];
                        }
                        match x {
                            Value::String(s) => s == want,
                            other => serde_json::to_string(other).is_ok_and(|s| s == want),
                        }
                    })
                    .collect();
            } else if let Ok(i) = inner.parse::<i64>() {
                cur = cur
                    .into_iter()
                    .filter_map(|v| {
                        let a = v.as_array()?;
                        let idx = if i < 0 { a.len() as i64 + i } else { i };
                        a.get(usize::try_from(idx).ok()?)
                    })
                    .collect();
            } else {
                let key = inner.trim_matches(|c| c == '"' || c == '\'');
                cur = cur.into_iter().filter_map(|v| v.get(key)).collect();
            }
        } else {
            return Vec::new();
        }
    }
    cur
}

fn cell(obj: &Value, c: &PrinterColumn) -> Value {
    if let Some(special) = c.json_path.strip_prefix('#') {
        return builtin_cell(obj, special);
    }
    let found = json_path(obj, &c.json_path);
    match found.as_slice() {
        [] => Value::Null,
        [one] => {
            if c.type_ == "date" {
                age(one)
            } else {
                match one {
                    Value::Object(_) | Value::Array(_) => Value::String(one.to_string()),
                    v => (*v).clone(),
                }
            }
        }
        many => Value::String(
            many.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
    }
}

fn count(v: &Value) -> usize {
    v.as_object().map_or(0, |m| m.len()) + v.as_array().map_or(0, Vec::len)
}

fn builtin_cell(obj: &Value, which: &str) -> Value {
    let status = &obj["status"];
    match which {
        "data" => json!(count(&obj["data"]) + count(&obj["binaryData"])),
        "secrets" => json!(count(&obj["secrets"])),
        "object" => {
            let o = &obj["involvedObject"];
            json!(format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or_default().to_ascii_lowercase(),
                o["name"].as_str().unwrap_or_default()
            ))
        }
        "externalip" => {
            let ips: Vec<String> = status["loadBalancer"]["ingress"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i["ip"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            json!(if ips.is_empty() {
                "<none>".to_string()
            } else {
                ips.join(",")
            })
        }
        "ports" => {
            let ports: Vec<String> = obj["spec"]["ports"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!(if ports.is_empty() {
                "<none>".to_string()
            } else {
                ports.join(",")
            })
        }
        "podready" => {
            let total = count(&obj["spec"]["containers"]);
            let ready = status["containerStatuses"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|c| c["ready"] == true).count());
            json!(format!("{ready}/{total}"))
        }
        "podstatus" => {
            if !obj["metadata"]["deletionTimestamp"].is_null() {
                return json!("Terminating");
            }
            let terminated = status["containerStatuses"].as_array().and_then(|cs| {
                cs.iter()
                    .find_map(|c| c["state"]["terminated"]["reason"].as_str())
            });
            if let Some(r) = terminated {
                return json!(r);
            }
            json!(
                status["reason"]
                    .as_str()
                    .or_else(|| status["phase"].as_str())
                    .unwrap_or("Pending")
            )
        }
        "restarts" => {
            let n: i64 = status["containerStatuses"].as_array().map_or(0, |a| {
                a.iter().filter_map(|c| c["restartCount"].as_i64()).sum()
            });
            json!(n)
        }
        "jobstatus" => {
            let has = |t: &str| {
                status["conditions"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
            };
            let s = if has("Complete") {
                "Complete"
            } else if has("Failed") {
                "Failed"
            } else if has("FailureTarget") {
                "FailureTarget"
            } else if obj["spec"]["suspend"] == true {
                "Suspended"
            } else {
                "Running"
            };
            json!(s)
        }
        "completions" => {
            let want = obj["spec"]["completions"].as_i64().unwrap_or(1);
            let got = status["succeeded"].as_i64().unwrap_or(0);
            json!(format!("{got}/{want}"))
        }
        "jobduration" => {
            let start = status["startTime"].as_str().and_then(since);
            let end = status["completionTime"].as_str().and_then(since);
            match (start, end) {
                (Some(s), Some(e)) => json!(human_duration(s - e)),
                (Some(s), None) => json!(human_duration(s)),
                _ => json!(""),
            }
        }
        "deployready" => {
            let want = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            let got = status["readyReplicas"].as_i64().unwrap_or(0);
            json!(format!("{got}/{want}"))
        }
        "roleref" => {
            let r = &obj["roleRef"];
            json!(format!(
                "{}/{}",
                r["kind"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default()
            ))
        }
        _ if which.starts_with("subjects:") => {
            let kind = which.trim_start_matches("subjects:");
            let names: Vec<String> = obj["subjects"]
                .as_array()
                .map(|subjects| {
                    subjects
                        .iter()
                        .filter(|s| s["kind"] == kind)
                        .map(|s| {
                            let name = s["name"].as_str().unwrap_or_default();
                            if kind == "ServiceAccount" {
                                let ns = s["namespace"].as_str().unwrap_or_default();
                                format!("{ns}/{name}")
                            } else {
                                name.to_string()
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!(names.join(", "))
        }
        _ => Value::Null,
    }
}

/// Render objects as a Table. `no_headers` omits column definitions (watch events after
/// the first); `include` is `includeObject` (`None`, `Metadata` (default) or `Object`).
pub fn table(res: &ResourceInfo, objs: &[Value], no_headers: bool, include: Option<&str>) -> Value {
    // Core events lead with Last Seen and show the name only in the wide view.
    let core_events = res.group.is_empty() && res.plural == "events";
    let mut columns = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": i32::from(core_events),
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    })];
    // A CRD with printer columns shows exactly those; everything else gets an Age column.
    let mut has_age = (res.custom && !res.printer_columns.is_empty()) || core_events;
    for c in &res.printer_columns {
        if c.json_path == ".metadata.creationTimestamp" {
            has_age = true;
        }
        columns.push(json!({
            "name": c.name, "type": c.type_, "format": "", "description": c.description,
            "priority": c.priority,
        }));
    }
    if !has_age {
        columns.push(json!({
            "name": "Age", "type": "string", "format": "", "priority": 0,
            "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
        }));
    }
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in &res.printer_columns {
                cells.push(cell(o, c));
            }
            if !has_age {
                cells.push(age(&o["metadata"]["creationTimestamp"]));
            }
            let mut row = json!({"cells": cells});
            match include {
                Some("None") => {}
                Some("Object") => row["object"] = o.clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o["metadata"],
                    })
                }
            }
            row
        })
        .collect();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "rows": rows,
    });
    if !no_headers {
        t["columnDefinitions"] = Value::Array(columns);
    } else {
        t["columnDefinitions"] = Value::Null;
    }
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubernetes() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }

    #[test]
    fn json_paths() {
        let o = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"a": [1, 2]}});
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![&json!("True")]
        );
        assert_eq!(json_path(&o, ".spec.a[1]"), vec![&json!(2)]);
        assert_eq!(json_path(&o, ".spec.a[*]").len(), 2);
        assert!(json_path(&o, ".nope.x").is_empty());
    }
}
