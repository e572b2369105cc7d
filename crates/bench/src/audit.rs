//! Requests a real API server served, counted from its audit log.
//!
//! The control plane audits the metadata of every request (one JSON `audit.k8s.io/v1`
//! Event per line; the `ResponseComplete` stage once the request is done). Its own
//! controllers, its node agent and the benchmark's harness all authenticate as the same
//! admin user, so requests are told apart by who sent them: lifeboat and the runbook each
//! get a ServiceAccount of their own (see `identity`), and a count takes the events of one
//! user received after a point in time (the end of the warm-up), i.e. user + time window.
//! User agents are not used: kube-rs sends none, and kubectl's depends on its build.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// One completed request.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub user: String,
    pub verb: String,
    /// `resource` or `resource/subresource`; the path for non-resource requests
    /// (discovery: `/api`, `/apis`, `/version`…).
    pub resource: String,
    pub received: jiff::Timestamp,
    /// Received → response complete: the time the server spent on it.
    pub took: Duration,
}

/// Parses one audit log line; `None` for other stages and lines that are not events.
pub fn parse(line: &str) -> Option<Entry> {
    let e: Value = serde_json::from_str(line).ok()?;
    if e["stage"] != "ResponseComplete" {
        return None;
    }
    let resource = match e["objectRef"]["resource"].as_str() {
        Some(r) => match e["objectRef"]["subresource"].as_str() {
            Some(sub) => format!("{r}/{sub}"),
            None => r.to_string(),
        },
        None => {
            let uri = e["requestURI"].as_str()?;
            uri.split('?').next().unwrap_or(uri).to_string()
        }
    };
    let received: jiff::Timestamp = e["requestReceivedTimestamp"].as_str()?.parse().ok()?;
    let completed: jiff::Timestamp = e["stageTimestamp"].as_str()?.parse().ok()?;
    Some(Entry {
        user: e["user"]["username"].as_str()?.to_string(),
        verb: e["verb"].as_str()?.to_string(),
        resource,
        received,
        took: Duration::try_from(completed.duration_since(received)).unwrap_or_default(),
    })
}

/// An audit log read incrementally: each [`AuditLog::refresh`] parses only what the
/// server appended since the last one.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    offset: u64,
    /// A line the server was still writing at the last read.
    partial: Vec<u8>,
    entries: Vec<Entry>,
}

impl AuditLog {
    pub fn new(path: &Path) -> AuditLog {
        AuditLog {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Reads the lines appended since the last call.
    pub fn refresh(&mut self) -> std::io::Result<()> {
        let mut file = std::fs::File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = std::mem::take(&mut self.partial);
        let read = file.read_to_end(&mut bytes)?;
        self.offset += read as u64;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = bytes.split_off(complete);
        let text = String::from_utf8_lossy(&bytes);
        self.entries.extend(text.lines().filter_map(parse));
        Ok(())
    }

    /// Requests by (verb, resource) of `user` received at or after `since`; watches are
    /// left out (long-lived, opened before the measurement), as in the simulator's counts.
    pub fn counts(&self, user: &str, since: jiff::Timestamp) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for e in self.counted(user, since) {
            *out.entry((e.verb.clone(), e.resource.clone())).or_insert(0) += 1;
        }
        out
    }

    /// The median time the server spent on the requests [`AuditLog::counts`] counts, by
    /// (verb, resource).
    pub fn server_times(
        &self,
        user: &str,
        since: jiff::Timestamp,
    ) -> BTreeMap<(String, String), Duration> {
        let mut all: BTreeMap<(String, String), Vec<Duration>> = BTreeMap::new();
        for e in self.counted(user, since) {
            all.entry((e.verb.clone(), e.resource.clone()))
                .or_default()
                .push(e.took);
        }
        all.into_iter()
            .map(|(k, mut v)| {
                v.sort();
                (k, v[(v.len() - 1) / 2])
            })
            .collect()
    }

    fn counted(&self, user: &str, since: jiff::Timestamp) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| e.user == user && e.received >= since && e.verb != "watch")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SA: &str = "system:serviceaccount:lifeboat-system:lifeboat";

    fn line(stage: &str, user: &str, verb: &str, object: &str, uri: &str, at: &str) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"{stage}","requestURI":"{uri}","verb":"{verb}","user":{{"username":"{user}"}},{object}"responseStatus":{{"code":200}},"requestReceivedTimestamp":"{at}","stageTimestamp":"{at}"}}"#
        )
    }

    #[test]
    fn parses_resources_subresources_and_discovery_paths() {
        let status = line(
            "ResponseComplete",
            SA,
            "update",
            r#""objectRef":{"resource":"recoveryruns","subresource":"status","name":"r"},"#,
            "/apis/recovery.elotl.co/v1alpha1/namespaces/x/recoveryruns/r/status",
            "2025-01-01T00:00:00.000100Z",
        )
        .replace(
            r#""stageTimestamp":"2025-01-01T00:00:00.000100Z""#,
            r#""stageTimestamp":"2025-01-01T00:00:00.003600Z""#,
        );
        let e = parse(&status).unwrap();
        assert_eq!(e.took, Duration::from_micros(3500));
        assert_eq!(
            (e.verb.as_str(), e.resource.as_str()),
            ("update", "recoveryruns/status")
        );
        let discovery = line(
            "ResponseComplete",
            "admin",
            "get",
            "",
            "/apis?timeout=32s",
            "2025-01-01T00:00:00Z",
        );
        assert_eq!(parse(&discovery).unwrap().resource, "/apis");
        let started = line(
            "ResponseStarted",
            SA,
            "watch",
            r#""objectRef":{"resource":"recoveryruns"},"#,
            "/x",
            "2025-01-01T00:00:00Z",
        );
        assert!(parse(&started).is_none(), "only completed requests count");
    }

    #[test]
    fn counts_one_user_after_a_time_without_watches_across_partial_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let cm = r#""objectRef":{"resource":"configmaps","name":"c"},"#;
        let lines = [
            line(
                "ResponseComplete",
                SA,
                "patch",
                cm,
                "/c",
                "2025-01-01T00:00:00.5Z",
            ),
            line(
                "ResponseComplete",
                SA,
                "patch",
                cm,
                "/c",
                "2025-01-01T00:00:01.5Z",
            ),
            line(
                "ResponseComplete",
                "admin",
                "patch",
                cm,
                "/c",
                "2025-01-01T00:00:02Z",
            ),
            line(
                "ResponseComplete",
                SA,
                "watch",
                cm,
                "/c",
                "2025-01-01T00:00:03Z",
            ),
            line(
                "ResponseComplete",
                SA,
                "get",
                cm,
                "/c",
                "2025-01-01T00:00:04Z",
            ),
        ];
        let all = lines.join("\n") + "\n";
        // The server is mid-way through the last line at the first read.
        let cut = all.len() - 10;
        std::fs::write(&path, &all[..cut]).unwrap();
        let mut log = AuditLog::new(&path);
        log.refresh().unwrap();
        let since: jiff::Timestamp = "2025-01-01T00:00:01Z".parse().unwrap();
        let key = |v: &str| (v.to_string(), "configmaps".to_string());
        assert_eq!(log.counts(SA, since).get(&key("get")), None);
        std::fs::write(&path, &all).unwrap();
        log.refresh().unwrap();
        let counts = log.counts(SA, since);
        assert_eq!(counts.get(&key("patch")), Some(&1), "one before `since`");
        assert_eq!(
            counts.get(&key("get")),
            Some(&1),
            "the line completed later"
        );
        assert_eq!(counts.get(&key("watch")), None, "watches are left out");
        assert_eq!(
            log.server_times(SA, since).get(&key("patch")),
            Some(&Duration::ZERO),
            "received and completed at the same instant"
        );
        assert_eq!(
            counts.values().sum::<u64>(),
            2,
            "the admin's request is not SA's"
        );
    }
}
