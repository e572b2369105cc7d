//! Alertmanager webhook notifications (payload version 4), as Alertmanager would send them,
//! and sending them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::observe::BENCH_ID;

/// One firing alert.
#[derive(Clone, Debug)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub starts_at: jiff::Timestamp,
}

impl Alert {
    /// An alert with `labels` plus the unique `bench_id` label.
    pub fn new(id: &str, labels: &[(&str, &str)], starts_at: jiff::Timestamp) -> Alert {
        let mut l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        l.insert(BENCH_ID.to_string(), id.to_string());
        Alert {
            labels: l,
            starts_at,
        }
    }
}

/// FNV-1a 64 of the label set, as 16 hex digits: a stable, distinct fingerprint per label
/// set (Alertmanager's own algorithm differs only in separators).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The notification body for `alerts` (one Alertmanager group).
pub fn payload(alerts: &[Alert]) -> Value {
    let common = alerts
        .first()
        .and_then(|a| a.labels.get("alertname"))
        .cloned()
        .unwrap_or_default();
    let list: Vec<Value> = alerts
        .iter()
        .map(|a| {
            json!({
                "status": "firing",
                "labels": a.labels,
                "annotations": {"summary": "benchmark alert"},
                "startsAt": a.starts_at.to_string(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.invalid/graph",
                "fingerprint": fingerprint(&a.labels),
            })
        })
        .collect();
    json!({
        "version": "4",
        "receiver": "lifeboat",
        "status": "firing",
        "groupKey": format!("{{}}:{{alertname=\"{common}\"}}"),
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": common},
        "commonLabels": {"alertname": common},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid",
        "alerts": list,
    })
}

/// The receiver's answer to a notification.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Summary {
    #[serde(default)]
    pub created: usize,
    #[serde(default)]
    pub existing: usize,
    #[serde(default)]
    pub resolved: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("webhook request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("webhook answered {status}: {body}")]
    Status { status: u16, body: String },
}

/// POSTs `body` to `url`; returns the receiver's summary and how long the request took.
pub async fn send(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<(Summary, Duration), SendError> {
    let bytes = body.to_string();
    let t0 = Instant::now();
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    let took = t0.elapsed();
    if !status.is_success() {
        return Err(SendError::Status {
            status: status.as_u16(),
            body: text,
        });
    }
    let summary = serde_json::from_str(&text).unwrap_or_default();
    Ok((summary, took))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_version_4_with_distinct_fingerprints() {
        let t = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let a = Alert::new("1", &[("alertname", "X")], t);
        let b = Alert::new("2", &[("alertname", "X")], t);
        let p = payload(&[a, b]);
        assert_eq!(p["version"], "4");
        assert_eq!(p["alerts"].as_array().unwrap().len(), 2);
        assert_ne!(
            p["alerts"][0]["fingerprint"], p["alerts"][1]["fingerprint"],
            "alerts differing in bench_id must have different fingerprints"
        );
        assert_eq!(p["alerts"][0]["labels"][BENCH_ID], "1");
        assert_eq!(p["alerts"][0]["startsAt"], "2023-11-14T22:13:20Z");
    }
}
