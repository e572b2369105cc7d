//! The Alertmanager webhook payload (version 4) and its validation.
//!
//! Parsing is lenient about types that Alertmanager itself leaves open (missing optional
//! fields, extra fields); [`WebhookPayload::validate`] then checks what lifeboat relies on and
//! names the offending field in its message, e.g.
//! `alerts[3].status: must be "firing" or "resolved", got "foo"`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Alertmanager's "no time" value for `endsAt` of a firing alert.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
/// Longest label name accepted, in bytes.
pub const MAX_LABEL_NAME_BYTES: usize = 1024;
/// Longest label value accepted, in bytes. Labels identify an alert (and are matched
/// against plans, copied into runs and rendered into patches); free text belongs in
/// annotations, which only the body limit bounds.
pub const MAX_LABEL_VALUE_BYTES: usize = 16 * 1024;
/// Longest receiver name accepted, in bytes (it becomes the alert's `source` and a metrics
/// label).
pub const MAX_RECEIVER_BYTES: usize = 256;

/// A webhook notification, as Alertmanager sends it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub receiver: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub group_key: Option<String>,
    #[serde(default)]
    pub truncated_alerts: Option<u64>,
    #[serde(default)]
    pub group_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub common_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub common_annotations: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "externalURL")]
    pub external_url: Option<String>,
    #[serde(default)]
    pub alerts: Option<Vec<PayloadAlert>>,
}

/// One alert of a notification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Whether an alert fires or has resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// A validated alert: everything lifeboat needs to record it.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidAlert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Timestamp,
    /// `None` for Alertmanager's zero time or when absent.
    pub ends_at: Option<Timestamp>,
    pub generator_url: Option<String>,
    /// As sent, or computed from the labels as Alertmanager would when absent.
    pub fingerprint: String,
}

impl ValidAlert {
    /// The `alertname` label, or empty.
    pub fn alertname(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Deterministic name of this alert's ReceivedAlert.
    pub fn object_name(&self) -> String {
        crate::naming::received_alert_name(
            self.alertname(),
            &self.fingerprint,
            &self.starts_at.to_string(),
        )
    }
}

/// A validated notification.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidPayload {
    /// The Alertmanager receiver name (empty when absent).
    pub receiver: String,
    pub alerts: Vec<ValidAlert>,
}

/// A payload that does not meet the webhook contract; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PayloadError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> PayloadError {
    PayloadError {
        field: field.into(),
        message: message.into(),
    }
}

fn parse_time(field: &str, value: &str) -> Result<Timestamp, PayloadError> {
    value.parse::<Timestamp>().map_err(|e| {
        err(
            field,
            format!("must be an RFC 3339 timestamp, got {value:?} ({e})"),
        )
    })
}

fn parse_status(field: &str, value: Option<&str>) -> Result<AlertStatus, PayloadError> {
    match value {
        Some("firing") => Ok(AlertStatus::Firing),
        Some("resolved") => Ok(AlertStatus::Resolved),
        Some(other) => Err(err(
            field,
            format!("must be \"firing\" or \"resolved\", got {other:?}"),
        )),
        None => Err(err(field, "required (\"firing\" or \"resolved\")")),
    }
}

impl WebhookPayload {
    /// Parses a request body (JSON); the error is serde's message.
    ///
    /// The notification and each alert must be JSON objects: serde would otherwise also read
    /// a struct from a list of its fields in order, so `[]` or `"alerts": [["firing", …]]`
    /// would pass for a notification. Parsing goes through a [`serde_json::Value`] first,
    /// which bounds nesting (serde_json's recursion limit) everywhere in the body, unknown
    /// fields included. Of duplicate keys the last one counts, as with Go's `encoding/json`.
    pub fn from_json(body: &[u8]) -> Result<Self, serde_json::Error> {
        use serde::de::Error as _;
        let value: serde_json::Value = serde_json::from_slice(body)?;
        let Some(object) = value.as_object() else {
            return Err(serde_json::Error::custom(format!(
                "the body must be a JSON object (an Alertmanager notification), got {}",
                json_kind(&value)
            )));
        };
        if let Some(serde_json::Value::Array(alerts)) = object.get("alerts")
            && let Some((i, bad)) = alerts.iter().enumerate().find(|(_, a)| !a.is_object())
        {
            return Err(serde_json::Error::custom(format!(
                "alerts[{i}] must be an object, got {}",
                json_kind(bad)
            )));
        }
        serde_json::from_value(value)
    }

    /// Checks the payload against the version-4 contract.
    pub fn validate(&self) -> Result<ValidPayload, PayloadError> {
        match self.version.as_deref() {
            Some("4") => {}
            Some(other) => {
                return Err(err(
                    "version",
                    format!(
                        "must be \"4\" (Alertmanager webhook payload version 4), got {other:?}"
                    ),
                ));
            }
            None => return Err(err("version", "required (must be \"4\")")),
        }
        if let Some(status) = self.status.as_deref() {
            parse_status("status", Some(status))?;
        }
        if let Some(receiver) = self.receiver.as_deref() {
            if receiver.len() > MAX_RECEIVER_BYTES {
                return Err(err(
                    "receiver",
                    format!(
                        "{} bytes long, more than the limit of {MAX_RECEIVER_BYTES}",
                        receiver.len()
                    ),
                ));
            }
            if receiver.chars().any(char::is_control) {
                return Err(err("receiver", "contains a control character"));
            }
        }
        let alerts = self
            .alerts
            .as_ref()
            .ok_or_else(|| err("alerts", "required (a list of alerts)"))?;
        let alerts = alerts
            .iter()
            .enumerate()
            .map(|(i, a)| a.validate(i))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ValidPayload {
            receiver: self.receiver.clone().unwrap_or_default(),
            alerts,
        })
    }
}

impl PayloadAlert {
    fn validate(&self, index: usize) -> Result<ValidAlert, PayloadError> {
        let f = |name: &str| format!("alerts[{index}].{name}");
        let status = parse_status(&f("status"), self.status.as_deref())?;
        let labels = self
            .labels
            .clone()
            .ok_or_else(|| err(f("labels"), "required"))?;
        if labels.is_empty() {
            return Err(err(f("labels"), "must not be empty"));
        }
        if let Some(bad) = labels.keys().find(|k| k.is_empty()) {
            return Err(err(f("labels"), format!("label name {bad:?} is empty")));
        }
        check_labels(&labels, &f("labels"))?;
        let starts_at = match self.starts_at.as_deref() {
            None | Some("") => return Err(err(f("startsAt"), "required")),
            Some(s) => parse_time(&f("startsAt"), s)?,
        };
        let ends_at = match self.ends_at.as_deref() {
            None | Some("") | Some(ZERO_TIME) => None,
            Some(s) => {
                let t = parse_time(&f("endsAt"), s)?;
                // Any representation of year 1 is Alertmanager's zero time.
                if t < "0002-01-01T00:00:00Z"
                    .parse::<Timestamp>()
                    .unwrap_or(Timestamp::MIN)
                {
                    None
                } else {
                    Some(t)
                }
            }
        };
        let fingerprint = match self.fingerprint.as_deref() {
            Some(fp) if !fp.is_empty() => fp.to_string(),
            _ => fingerprint(&labels),
        };
        Ok(ValidAlert {
            status,
            labels,
            annotations: self.annotations.clone().unwrap_or_default(),
            starts_at,
            ends_at,
            generator_url: self.generator_url.clone().filter(|u| !u.is_empty()),
            fingerprint,
        })
    }
}

/// A short name for the kind of a JSON value, for messages.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The start of `s` for a message: at most 40 characters.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// Label names and values within their size limits, names free of control characters and
/// values free of NUL (which no text consumer of a label handles).
fn check_labels(labels: &BTreeMap<String, String>, field: &str) -> Result<(), PayloadError> {
    for (name, value) in labels {
        if name.len() > MAX_LABEL_NAME_BYTES {
            return Err(err(
                field,
                format!(
                    "label name {} is {} bytes long, more than the limit of {MAX_LABEL_NAME_BYTES}",
                    excerpt(name),
                    name.len()
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(err(
                field,
                format!("label name {name:?} contains a control character"),
            ));
        }
        if value.len() > MAX_LABEL_VALUE_BYTES {
            return Err(err(
                format!("{field}[{name:?}]"),
                format!(
                    "value is {} bytes long, more than the limit of {MAX_LABEL_VALUE_BYTES} (put long text in annotations)",
                    value.len()
                ),
            ));
        }
        if value.contains('\0') {
            return Err(err(
                format!("{field}[{name:?}]"),
                "value contains a NUL character",
            ));
        }
    }
    Ok(())
}

/// Fingerprint of a label set, computed as Prometheus/Alertmanager do
/// (`model.LabelSet.Fingerprint`: FNV-1a 64 over sorted `name 0xff value 0xff`, as 16 hex
/// digits), so an alert without one gets the fingerprint Alertmanager would have sent.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 14695981039346656037;
    const PRIME: u64 = 1099511628211;
    const SEPARATOR: u8 = 0xff;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    // BTreeMap iterates in byte order of the names, which is Go's sort.Strings order.
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    format!("{h:016x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(alerts: serde_json::Value) -> WebhookPayload {
        serde_json::from_value(json!({
            "version": "4",
            "receiver": "lifeboat",
            "status": "firing",
            "groupKey": "{}:{alertname=\"DatabaseDown\"}",
            "truncatedAlerts": 0,
            "groupLabels": {"alertname": "DatabaseDown"},
            "commonLabels": {"alertname": "DatabaseDown"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }))
        .unwrap()
    }

    fn alert() -> serde_json::Value {
        json!({
            "status": "firing",
            "labels": {"alertname": "DatabaseDown", "app": "db"},
            "annotations": {"summary": "primary down"},
            "startsAt": "2024-05-01T10:00:00.123Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph",
            "fingerprint": "c4b3a2f1e0d9c8b7"
        })
    }

    #[test]
    fn valid_payload_is_accepted() {
        let p = payload(json!([alert()])).validate().unwrap();
        assert_eq!(p.receiver, "lifeboat");
        let a = &p.alerts[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.labels["app"], "db");
        assert_eq!(a.annotations["summary"], "primary down");
        assert_eq!(a.ends_at, None, "zero time must mean no endsAt");
        assert_eq!(a.fingerprint, "c4b3a2f1e0d9c8b7");
        assert_eq!(a.starts_at.to_string(), "2024-05-01T10:00:00.123Z");
        assert!(a.object_name().starts_with("databasedown-"));
    }

    #[test]
    fn invalid_fields_are_named() {
        let mut bad_status = alert();
        bad_status["status"] = json!("foo");
        let mut alerts = vec![alert(), alert(), alert(), bad_status];
        let e = payload(json!(alerts.clone())).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "alerts[3].status: must be \"firing\" or \"resolved\", got \"foo\""
        );

        alerts[3] = alert();
        alerts[1].as_object_mut().unwrap().remove("labels");
        let e = payload(json!(alerts.clone())).validate().unwrap_err();
        assert_eq!(e.to_string(), "alerts[1].labels: required");

        alerts[1] = alert();
        alerts[2].as_object_mut().unwrap().remove("startsAt");
        let e = payload(json!(alerts.clone())).validate().unwrap_err();
        assert_eq!(e.to_string(), "alerts[2].startsAt: required");

        alerts[2]["startsAt"] = json!("yesterday");
        let e = payload(json!(alerts.clone())).validate().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("alerts[2].startsAt: must be an RFC 3339 timestamp"),
            "{e}"
        );

        let mut p = payload(json!([alert()]));
        p.version = Some("3".into());
        let e = p.validate().unwrap_err();
        assert_eq!(e.field, "version");
        p.version = None;
        assert_eq!(p.validate().unwrap_err().field, "version");

        let mut p = payload(json!([alert()]));
        p.alerts = None;
        assert_eq!(p.validate().unwrap_err().field, "alerts");
    }

    #[test]
    fn wrong_json_types_are_rejected_by_serde() {
        let e = WebhookPayload::from_json(br#"{"version":"4","alerts":[{"labels":{"a":1}}]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        assert!(WebhookPayload::from_json(b"{not json").is_err());
    }

    #[test]
    fn lists_do_not_pass_for_objects_and_nesting_is_bounded() {
        let e = WebhookPayload::from_json(b"[]").unwrap_err();
        assert!(
            e.to_string().contains("must be a JSON object") && e.to_string().contains("a list"),
            "{e}"
        );
        let e = WebhookPayload::from_json(
            br#"{"version":"4","alerts":[{"status":"firing"},["firing",{"a":"b"}]]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("alerts[1] must be an object, got a list"),
            "{e}"
        );
        let deep = format!(
            r#"{{"version":"4","extra":{}1{},"alerts":[]}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let e = WebhookPayload::from_json(deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
        // Alertmanager's own decoder keeps the last of duplicate keys.
        let p = WebhookPayload::from_json(br#"{"version":"3","version":"4","alerts":[]}"#).unwrap();
        assert_eq!(p.version.as_deref(), Some("4"));
    }

    #[test]
    fn oversized_and_control_character_labels_are_rejected() {
        let mut a = alert();
        a["labels"]["description"] = json!("x".repeat(MAX_LABEL_VALUE_BYTES + 1));
        let e = payload(json!([alert(), a])).validate().unwrap_err();
        assert_eq!(e.field, "alerts[1].labels[\"description\"]");
        assert!(e.message.contains("more than the limit of 16384"), "{e}");

        let mut a = alert();
        a["labels"]["x".repeat(5000)] = json!("v");
        let e = payload(json!([a])).validate().unwrap_err();
        assert_eq!(e.field, "alerts[0].labels");
        assert!(e.message.contains("5000 bytes long"), "{e}");
        assert!(
            e.to_string().len() < 300,
            "the message must not echo the name: {e}"
        );

        let mut a = alert();
        a["labels"]["bad\u{0}name"] = json!("v");
        let e = payload(json!([a])).validate().unwrap_err();
        assert!(e.message.contains("control character"), "{e}");

        let mut a = alert();
        a["labels"]["app"] = json!("db\u{0}");
        let e = payload(json!([a])).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "alerts[0].labels[\"app\"]: value contains a NUL character"
        );

        // Unicode is fine, in names and values, as are limits reached exactly.
        let mut a = alert();
        a["labels"]["région"] = json!("東京 🚒");
        a["labels"]["long"] = json!("y".repeat(MAX_LABEL_VALUE_BYTES));
        let p = payload(json!([a])).validate().unwrap();
        assert_eq!(p.alerts[0].labels["région"], "東京 🚒");

        let mut p = payload(json!([alert()]));
        p.receiver = Some("r".repeat(MAX_RECEIVER_BYTES + 1));
        assert_eq!(p.validate().unwrap_err().field, "receiver");
    }

    #[test]
    fn missing_fingerprint_is_computed_like_alertmanager() {
        // Reference values from Prometheus' model.LabelSet.Fingerprint.
        let empty = BTreeMap::new();
        assert_eq!(fingerprint(&empty), "cbf29ce484222325");
        // As sent by Alertmanager 0.25 for these labels.
        let labels: BTreeMap<String, String> = [("alertname", "X"), ("app", "db")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(fingerprint(&labels), "7a5e424259a128b9");
        let mut a = alert();
        a.as_object_mut().unwrap().remove("fingerprint");
        let p = payload(json!([a.clone()])).validate().unwrap();
        let mut b = a.clone();
        b["labels"] = json!({"app": "db", "alertname": "DatabaseDown"});
        let q = payload(json!([b])).validate().unwrap();
        assert_eq!(p.alerts[0].fingerprint, q.alerts[0].fingerprint);
        assert_eq!(p.alerts[0].fingerprint.len(), 16);
        a["labels"]["app"] = json!("other");
        let r = payload(json!([a])).validate().unwrap();
        assert_ne!(p.alerts[0].fingerprint, r.alerts[0].fingerprint);
    }
}
