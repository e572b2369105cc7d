//! Differential test: the simulator (`lifeboat-sim`) against a real kube-apiserver
//! (`testing/kube`).
//!
//! One simulated and one real cluster are started, whatever `LIFEBOAT_TEST_CLUSTER` says,
//! and one corpus of raw HTTP requests is sent to both, in the same order. For every request
//! the test compares the HTTP status code; for errors the `reason` and `code` of the
//! `Status` body; for successes the returned object after [`normalise`] (which drops what
//! is specific to one server instance, each with its reason); for watches the events
//! (type and object name, or reason and code of an ERROR).
//!
//! Every difference found must be listed in `sim-known-differences.yaml` next to this file
//! (what the real server does, what the simulator does, and why it is accepted); the test
//! fails on a difference that is not listed, and on a listed one that no longer occurs, so
//! the list stays true.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step is a failed test

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine;
use lifeboat_testkit::{Backend, DEADLINE, TestCluster};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

/// The namespace of the corpus's objects (created by the corpus).
const NS: &str = "diff";
/// The ServiceAccount the impersonation requests act as.
const ROBOT: &str = "system:serviceaccount:diff:robot";
/// The test CRD's group.
const WIDGET_GROUP: &str = "test.lifeboat.dev";
/// How long a watch of the corpus may stay open on the server.
const WATCH_TIMEOUT_SECONDS: u64 = 5;

const KNOWN_DIFFERENCES: &str = "sim-known-differences.yaml";

// ---------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------

/// One request of the corpus. Its path and body may refer to earlier responses of the same
/// server: `{rv:ID}` and `{name:ID}` are the `metadata.resourceVersion` and
/// `metadata.name` of the object step `ID` returned (these differ between the servers).
#[derive(Clone, Debug)]
struct Req {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    /// Paths (as in [`diff_values`]) left out of the comparison of this request, because
    /// their content at response time is a race with controllers; each call site says why.
    volatile: Vec<&'static str>,
}

impl Req {
    fn new(method: Method, path: impl Into<String>) -> Req {
        Req {
            method,
            path: path.into(),
            content_type: None,
            body: None,
            headers: Vec::new(),
            volatile: Vec::new(),
        }
    }

    fn with_body(mut self, content_type: &'static str, body: impl Into<String>) -> Req {
        self.content_type = Some(content_type);
        self.body = Some(body.into());
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Req {
        self.headers.push((name, value.to_string()));
        self
    }

    fn volatile(mut self, paths: &[&'static str]) -> Req {
        self.volatile.extend_from_slice(paths);
        self
    }
}

fn get(path: impl Into<String>) -> Req {
    Req::new(Method::GET, path)
}

fn post(path: impl Into<String>, body: Value) -> Req {
    Req::new(Method::POST, path).with_body("application/json", body.to_string())
}

fn put(path: impl Into<String>, body: Value) -> Req {
    Req::new(Method::PUT, path).with_body("application/json", body.to_string())
}

fn patch(path: impl Into<String>, content_type: &'static str, body: impl Into<String>) -> Req {
    Req::new(Method::PATCH, path).with_body(content_type, body)
}

fn delete(path: impl Into<String>) -> Req {
    Req::new(Method::DELETE, path)
}

const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_PATCH: &str = "application/strategic-merge-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// What a server answered: the status code and the body (JSON, or the text as a string);
/// for a watch, the events read.
#[derive(Clone, Debug)]
struct Outcome {
    code: u16,
    body: Value,
}

/// One API server of the comparison: where it is, how to authenticate, and what it
/// answered so far (by step id, for `{rv:ID}` and `{name:ID}`).
struct Endpoint {
    backend: Backend,
    base: String,
    token: String,
    http: reqwest::Client,
    saved: HashMap<String, Value>,
    /// Names this server generated (`generateName`), with their prefix.
    generated: Vec<(String, String)>,
}

impl Endpoint {
    /// Server URL, CA and bearer token from the cluster's admin kubeconfig.
    fn new(cluster: &TestCluster) -> Endpoint {
        let kc: Value = serde_yaml::from_str(cluster.kubeconfig_yaml()).unwrap();
        let server = &kc["clusters"][0]["cluster"];
        let base = server["server"].as_str().unwrap().trim_end_matches('/');
        let token = kc["users"][0]["user"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        let mut http = reqwest::Client::builder().timeout(DEADLINE);
        if let Some(ca) = server["certificate-authority-data"].as_str() {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(ca)
                .unwrap();
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        Endpoint {
            backend: cluster.backend(),
            base: base.to_string(),
            token,
            http: http.build().unwrap(),
            saved: HashMap::new(),
            generated: Vec::new(),
        }
    }

    /// `text` with `{rv:ID}` and `{name:ID}` replaced from this server's earlier answers.
    fn render(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (key, field) in [("rv", "resourceVersion"), ("name", "name")] {
            let open = format!("{{{key}:");
            while let Some(start) = out.find(&open) {
                let end = start + out[start..].find('}').unwrap();
                let id = &out[start + open.len()..end];
                let saved = self
                    .saved
                    .get(id)
                    .unwrap_or_else(|| panic!("{}: no answer saved for step {id}", self.backend));
                let value = saved["metadata"][field]
                    .as_str()
                    .unwrap_or_else(|| {
                        panic!("{}: step {id} has no metadata.{field}", self.backend)
                    })
                    .to_string();
                out.replace_range(start..=end, &value);
            }
        }
        out
    }

    fn request(&self, req: &Req) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.base, self.render(&req.path));
        let mut b = self
            .http
            .request(req.method.clone(), url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json");
        if let Some(ct) = req.content_type {
            b = b.header("Content-Type", ct);
        }
        if let Some(body) = &req.body {
            b = b.body(self.render(body));
        }
        for (name, value) in &req.headers {
            b = b.header(*name, value);
        }
        b
    }

    /// Sends `req`. A 429 (the real server answers "storage is (re)initializing" for a
    /// moment after a CRD is established) is retried after its Retry-After, as every
    /// client does, until the deadline.
    async fn send(&self, req: &Req) -> Outcome {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let resp =
                self.request(req).send().await.unwrap_or_else(|e| {
                    panic!("{} {} {}: {e}", self.backend, req.method, req.path)
                });
            let code = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if code == 429 && tokio::time::Instant::now() < deadline {
                let secs = body["details"]["retryAfterSeconds"].as_u64().unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(secs.min(1))).await;
                continue;
            }
            return Outcome { code, body };
        }
    }

    /// Opens the watch `req` and reads its events until one for object `until`, an ERROR,
    /// the end of the stream or the deadline. The outcome's body is the list of events,
    /// each `{type, name}` (`{type, reason, code}` for ERROR); a watch that answers with
    /// an error status is an ordinary outcome.
    async fn watch(&self, req: &Req, until: &str) -> Outcome {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut resp = loop {
            let resp = self.request(req).send().await.unwrap();
            if resp.status().as_u16() == 429 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            break resp;
        };
        let code = resp.status().as_u16();
        if code != 200 {
            let text = resp.text().await.unwrap();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            return Outcome { code, body };
        }
        let mut events = Vec::new();
        let mut buf = Vec::new();
        'read: loop {
            let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
                Err(_) => {
                    events.push(json!({"type": "<client deadline>"}));
                    break;
                }
                Ok(chunk) => chunk.unwrap(),
            };
            let Some(chunk) = chunk else { break };
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let event: Value = serde_json::from_slice(&line).unwrap();
                let type_ = event["type"].as_str().unwrap_or_default().to_string();
                let obj = &event["object"];
                if type_ == "ERROR" {
                    events
                        .push(json!({"type": type_, "reason": obj["reason"], "code": obj["code"]}));
                    break 'read;
                }
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                events.push(json!({"type": type_, "name": name}));
                if name == until {
                    break 'read;
                }
            }
        }
        Outcome {
            code,
            body: Value::Array(events),
        }
    }

    /// Polls `path` until `cond` holds for its answer; panics at the deadline.
    async fn wait_for(&self, what: &str, path: &str, cond: impl Fn(&Outcome) -> bool) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let o = self.send(&get(path)).await;
            if cond(&o) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {what} within {DEADLINE:?}; last answer {} {}",
                self.backend,
                o.code,
                o.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the authorizer lets `user` do `verb` on `resource` in `namespace`
    /// (RBAC objects reach the real server's authorizer through an informer). A server
    /// that does not serve SubjectAccessReviews has nothing to wait for.
    async fn wait_allowed(&self, user: &str, verb: &str, resource: &str, namespace: &str) {
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "resourceAttributes": {
                "verb": verb, "group": "", "resource": resource, "namespace": namespace}},
        });
        let req = post("/apis/authorization.k8s.io/v1/subjectaccessreviews", review);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let o = self.send(&req).await;
            if o.code == 404 || o.body["status"]["allowed"] == true {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: RBAC never allowed {user} to {verb} {resource}: {} {}",
                self.backend,
                o.code,
                o.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------

/// One difference between the servers' answers to one request. `field` is `http-status`,
/// `reason` (of an error `Status`), `events` (of a watch) or the path of a differing part
/// of the returned object (`.spec.containers[0].imagePullPolicy`; `.` for the whole body).
#[derive(Clone, Debug)]
struct Diff {
    step: String,
    field: String,
    real: Value,
    sim: Value,
}

/// A value present on one side only.
const ABSENT: &str = "<absent>";

/// Both clusters, and what the corpus found so far.
struct Differ {
    real: Endpoint,
    sim: Endpoint,
    steps: Vec<String>,
    diffs: Vec<Diff>,
}

impl Differ {
    fn record(&mut self, id: &str, req: &Req, real: &Outcome, sim: &Outcome) {
        assert!(
            !self.steps.iter().any(|s| s == id),
            "step id {id} used twice"
        );
        self.steps.push(id.to_string());
        for (ep, o) in [(&mut self.real, real), (&mut self.sim, sim)] {
            ep.saved.insert(id.to_string(), o.body.clone());
            let meta = &o.body["metadata"];
            if let (Some(prefix), Some(name)) =
                (meta["generateName"].as_str(), meta["name"].as_str())
                && name.starts_with(prefix)
                && o.code == 201
            {
                ep.generated.push((name.to_string(), prefix.to_string()));
            }
        }
        let (r, s) = (
            normalise(&real.body, &self.real.generated),
            normalise(&sim.body, &self.sim.generated),
        );
        let real = Outcome {
            code: real.code,
            body: r,
        };
        let sim = Outcome {
            code: sim.code,
            body: s,
        };
        self.diffs.extend(compare(id, req, &real, &sim));
    }

    /// Sends `req` to both servers (at the same time) and records the differences.
    async fn step(&mut self, id: &str, req: Req) -> (Outcome, Outcome) {
        let (real, sim) = tokio::join!(self.real.send(&req), self.sim.send(&req));
        self.record(id, &req, &real, &sim);
        (real, sim)
    }

    /// Opens the watch `req` on both servers and compares the events read until one for
    /// object `until` (see [`Endpoint::watch`]).
    async fn watch(&mut self, id: &str, req: Req, until: &str) {
        let (real, sim) = tokio::join!(self.real.watch(&req, until), self.sim.watch(&req, until));
        self.record(id, &req, &real, &sim);
    }

    /// Waits on both servers until `cond` holds for `GET path`.
    async fn wait_for(&self, what: &str, path: &str, cond: impl Fn(&Outcome) -> bool + Copy) {
        tokio::join!(
            self.real.wait_for(what, path, cond),
            self.sim.wait_for(what, path, cond)
        );
    }
}

fn compare(id: &str, req: &Req, real: &Outcome, sim: &Outcome) -> Vec<Diff> {
    let diff = |field: &str, real: Value, sim: Value| Diff {
        step: id.to_string(),
        field: field.to_string(),
        real,
        sim,
    };
    if real.code != sim.code {
        let summary = |o: &Outcome| match o.body.get("reason") {
            Some(reason) => json!({"code": o.code, "reason": reason}),
            None => json!({"code": o.code}),
        };
        return vec![diff("http-status", summary(real), summary(sim))];
    }
    if real.code >= 400 {
        let pick = |o: &Outcome| json!({"reason": o.body["reason"], "code": o.body["code"]});
        let (r, s) = (pick(real), pick(sim));
        return if r == s {
            Vec::new()
        } else {
            vec![diff("reason", r, s)]
        };
    }
    if real.body.is_array() {
        // A watch: its events.
        return if real.body == sim.body {
            Vec::new()
        } else {
            vec![diff("events", real.body.clone(), sim.body.clone())]
        };
    }
    let (mut r, mut s) = (real.body.clone(), sim.body.clone());
    for path in &req.volatile {
        remove_path(&mut r, path);
        remove_path(&mut s, path);
    }
    let mut out = Vec::new();
    diff_values("", &r, &s, &mut out);
    out.into_iter()
        .map(|(path, r, s)| diff(if path.is_empty() { "." } else { &path }, r, s))
        .collect()
}

/// The paths where `real` and `sim` differ, with both values ([`ABSENT`] for a side
/// that lacks the field). Lists of the same length are compared item by item.
fn diff_values(path: &str, real: &Value, sim: &Value, out: &mut Vec<(String, Value, Value)>) {
    match (real, sim) {
        (Value::Object(r), Value::Object(s)) => {
            let keys: BTreeSet<&String> = r.keys().chain(s.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (r.get(k), s.get(k)) {
                    (Some(rv), Some(sv)) => diff_values(&p, rv, sv, out),
                    (Some(rv), None) => out.push((p, rv.clone(), json!(ABSENT))),
                    (None, Some(sv)) => out.push((p, json!(ABSENT), sv.clone())),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(r), Value::Array(s)) if r.len() == s.len() => {
            for (i, (rv, sv)) in r.iter().zip(s).enumerate() {
                diff_values(&format!("{path}[{i}]"), rv, sv, out);
            }
        }
        _ if real != sim => out.push((path.to_string(), real.clone(), sim.clone())),
        _ => {}
    }
}

/// Removes the field at `path` (`.a.b`, no list indexes), if present.
fn remove_path(v: &mut Value, path: &str) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let (last, parents) = segs.split_last().unwrap();
    let mut cur = v;
    for s in parents {
        match cur.get_mut(*s) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(*last);
    }
}

/// A returned object (or list) with what is specific to one server instance taken out;
/// `generated` are the names the server generated, with their prefix.
fn normalise(body: &Value, generated: &[(String, String)]) -> Value {
    let mut v = body.clone();
    if v["kind"].as_str().is_some_and(|k| k.ends_with("List")) {
        if let Some(meta) = v["metadata"].as_object_mut() {
            // The version of the list: each server counts its own writes.
            meta.remove("resourceVersion");
        }
        if let Some(items) = v["items"].as_array_mut() {
            for item in items {
                normalise_object(item);
            }
        }
    } else {
        normalise_object(&mut v);
    }
    scrub(&mut v, generated);
    v
}

fn normalise_object(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    // Assigned by each server for itself: identity, its version counter, its clock.
    // managedFields: the simulator records managers without field sets (documented in
    // crates/sim/src/api.rs, `record_manager`); server-side apply's field ownership is
    // compared through its effects (conflicts, removed fields) instead. `generation` is
    // compared: both servers count it from 1 and bump it on spec changes.
    for f in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(f);
    }
    // A Service's cluster IP is allocated at random from the service range.
    for f in ["clusterIP", "clusterIPs"] {
        if let Some(v) = obj.get_mut("spec").and_then(|s| s.get_mut(f)) {
            *v = json!("<allocated>");
        }
    }
    // The node a pod runs on and the addresses it got are the server's own (the real
    // cluster's node is named after the cluster).
    if let Some(v) = obj.get_mut("spec").and_then(|s| s.get_mut("nodeName")) {
        *v = json!("<node>");
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        for f in ["hostIP", "hostIPs", "podIP", "podIPs"] {
            if let Some(v) = status.get_mut(f) {
                *v = json!("<address>");
            }
        }
    }
}

/// Replaces, anywhere in `v`: timestamps (each server's clock) by `<time>`; UIDs (each
/// server's own; Jobs copy theirs into labels and selectors) by `<uid>`; generated names
/// (a random suffix) by their prefix and `<random>`; the random suffix of the
/// ServiceAccount token volume the real server adds to pods.
fn scrub(v: &mut Value, generated: &[(String, String)]) {
    match v {
        Value::String(s) => {
            if let Some((_, prefix)) = generated.iter().find(|(name, _)| name == s) {
                *s = format!("{prefix}<random>");
            } else if is_timestamp(s) {
                *s = "<time>".into();
            } else if is_uuid(s) {
                *s = "<uid>".into();
            } else if s.starts_with("kube-api-access-") {
                *s = "kube-api-access-<random>".into();
            } else if let Some(rest) = s.strip_prefix("lifeboat-kube://") {
                // Container and image IDs of the real cluster's node agent.
                *s = format!("lifeboat-kube://{}", scrub_uuids(rest));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| scrub(v, generated)),
        Value::Object(m) => m.values_mut().for_each(|v| scrub(v, generated)),
        _ => {}
    }
}

fn scrub_uuids(s: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        if s.len() - i >= 36 && s.is_char_boundary(i + 36) && is_uuid(&s[i..i + 36]) {
            out.push_str("<uid>");
            i += 36;
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `2006-01-02T15:04:05Z`, with optional fraction and offset.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19..]
            .iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'Z' | b'+' | b'-' | b':'))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

// ---------------------------------------------------------------------------------------
// Known differences
// ---------------------------------------------------------------------------------------

/// One entry of `sim-known-differences.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Known {
    /// Stable id.
    id: String,
    /// The corpus steps (request ids) that show it; each must still show it.
    requests: Vec<String>,
    /// The differing fields ([`Diff::field`]; `*` matches any characters); each must still
    /// differ in at least one of the requests.
    fields: Vec<String>,
    /// What the real kube-apiserver does.
    real: String,
    /// What the simulator does.
    sim: String,
    /// Why the difference is accepted, or why it is not fixed yet.
    why: String,
}

impl Known {
    fn matches(&self, d: &Diff) -> bool {
        self.requests.contains(&d.step) && self.fields.iter().any(|f| glob(f, &d.field))
    }
}

/// `pattern` with `*` matching any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// What is wrong with the known-differences list given the differences found: unlisted
/// differences, and entries (or parts of entries) that no longer occur.
fn check_known(known: &[Known], diffs: &[Diff], steps: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    for k in known {
        if !ids.insert(&k.id) {
            problems.push(format!("known difference {}: listed twice", k.id));
        }
        for (what, text) in [("real", &k.real), ("sim", &k.sim), ("why", &k.why)] {
            if text.trim().is_empty() {
                problems.push(format!("known difference {}: `{what}` is empty", k.id));
            }
        }
        if k.requests.is_empty() || k.fields.is_empty() {
            problems.push(format!(
                "known difference {}: names no request or no field",
                k.id
            ));
        }
        for r in &k.requests {
            if !steps.contains(r) {
                problems.push(format!(
                    "known difference {}: request {r} is not in the corpus",
                    k.id
                ));
            } else if !diffs.iter().any(|d| d.step == *r && k.matches(d)) {
                problems.push(format!(
                    "known difference {}: no longer occurs for request {r}",
                    k.id
                ));
            }
        }
        for f in &k.fields {
            if !diffs
                .iter()
                .any(|d| k.requests.contains(&d.step) && glob(f, &d.field))
            {
                problems.push(format!(
                    "known difference {}: field {f} no longer differs in any of its requests",
                    k.id
                ));
            }
        }
    }
    let unlisted: Vec<&Diff> = diffs
        .iter()
        .filter(|d| !known.iter().any(|k| k.matches(d)))
        .collect();
    if !unlisted.is_empty() {
        let mut text = format!(
            "{} difference(s) not listed in {KNOWN_DIFFERENCES}:",
            unlisted.len()
        );
        for d in unlisted {
            let _ = write!(
                text,
                "\n  - request: {}\n    field: {}\n    real: {}\n    sim: {}",
                d.step,
                d.field,
                short(&d.real),
                short(&d.sim)
            );
        }
        problems.push(text);
    }
    problems
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

// ---------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------

fn core(resource: &str) -> String {
    format!("/api/v1/namespaces/{NS}/{resource}")
}

fn cm(name: &str) -> String {
    format!("{}/{name}", core("configmaps"))
}

fn jobs_path() -> String {
    format!("/apis/batch/v1/namespaces/{NS}/jobs")
}

fn plans_path() -> String {
    format!("/apis/recovery.elotl.co/v1alpha1/namespaces/{NS}/recoveryplans")
}

fn widgets_path() -> String {
    format!("/apis/{WIDGET_GROUP}/v1/namespaces/{NS}/widgets")
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"suite": "diff"}}, "data": data})
}

fn pod_spec() -> Value {
    // No command: the real cluster's node agent runs such a container until the pod is
    // deleted, so the pod stays Running once started.
    json!({"containers": [{"name": "main", "image": "busybox:1.36"}]})
}

fn recovery_plan(name: &str) -> Value {
    let mut plan: Value =
        serde_yaml::from_str(include_str!("../fixtures/recovery-plan-003.yaml")).unwrap();
    plan["metadata"] = json!({"name": name});
    plan
}

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{WIDGET_GROUP}")},
        "spec": {
            "group": WIDGET_GROUP, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "default": "blue"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    }},
                    "status": {"type": "object", "properties": {
                        "ready": {"type": "boolean"},
                        "observedSize": {"type": "integer"},
                    }},
                }}},
            }],
        },
    })
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": format!("{WIDGET_GROUP}/v1"), "kind": "Widget",
        "metadata": {"name": name}, "spec": spec})
}

fn is_running(o: &Outcome) -> bool {
    o.code == 200 && o.body["status"]["phase"] == "Running"
}

fn crd_established(o: &Outcome) -> bool {
    o.code == 200
        && o.body["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

async fn namespaces(d: &mut Differ) {
    let ns =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    d.step("ns-create", post("/api/v1/namespaces", ns(NS)))
        .await;
    d.step("ns-get", get(format!("/api/v1/namespaces/{NS}")))
        .await;
    d.step("ns-create-again", post("/api/v1/namespaces", ns(NS)))
        .await;
    d.step(
        "ns-create-gone",
        post("/api/v1/namespaces", ns("diff-gone")),
    )
    .await;
    d.step("ns-delete", delete("/api/v1/namespaces/diff-gone"))
        .await;
    // Pods need their namespace's default ServiceAccount on the real server (its
    // ServiceAccount admission); its controller creates it. The simulator has neither.
    d.real
        .wait_for(
            "default ServiceAccount",
            &format!("{}/default", core("serviceaccounts")),
            |o| o.code == 200,
        )
        .await;
}

async fn configmaps(d: &mut Differ) {
    let cms = core("configmaps");
    d.step(
        "cm-create",
        post(&cms, configmap("cm1", json!({"a": "1", "b": "2"}))),
    )
    .await;
    d.step("cm-get", get(cm("cm1"))).await;
    d.step(
        "cm-create-again",
        post(&cms, configmap("cm1", json!({"a": "1"}))),
    )
    .await;
    let mut updated = configmap("cm1", json!({"a": "10", "b": "2"}));
    updated["metadata"]["resourceVersion"] = json!("{rv:cm-create}");
    d.step("cm-update", put(cm("cm1"), updated.clone())).await;
    d.step("cm-update-stale", put(cm("cm1"), updated)).await;
    d.step(
        "cm-update-without-rv",
        put(cm("cm1"), configmap("cm1", json!({"a": "11", "b": "2"}))),
    )
    .await;
    d.step(
        "cm-update-missing",
        put(cm("cm-missing"), configmap("cm-missing", json!({}))),
    )
    .await;
    d.step(
        "cm-update-name-mismatch",
        put(cm("cm1"), configmap("cm-other", json!({}))),
    )
    .await;
    d.step(
        "cm-patch-json",
        patch(
            cm("cm1"),
            JSON_PATCH,
            r#"[{"op":"add","path":"/data/c","value":"3"},{"op":"replace","path":"/data/a","value":"12"}]"#,
        ),
    )
    .await;
    d.step(
        "cm-patch-json-test-fails",
        patch(
            cm("cm1"),
            JSON_PATCH,
            r#"[{"op":"test","path":"/data/a","value":"nope"},{"op":"remove","path":"/data/a"}]"#,
        ),
    )
    .await;
    d.step(
        "cm-patch-json-missing-path",
        patch(
            cm("cm1"),
            JSON_PATCH,
            r#"[{"op":"remove","path":"/data/zzz"}]"#,
        ),
    )
    .await;
    d.step(
        "cm-patch-merge",
        patch(
            cm("cm1"),
            MERGE_PATCH,
            r#"{"data":{"b":null,"d":"4"},"metadata":{"labels":{"extra":"yes"}}}"#,
        ),
    )
    .await;
    d.step(
        "cm-patch-strategic",
        patch(
            cm("cm1"),
            STRATEGIC_PATCH,
            r#"{"data":{"e":"5"},"metadata":{"annotations":{"note":"strategic"}}}"#,
        ),
    )
    .await;
    d.step(
        "cm-patch-unsupported-type",
        patch(cm("cm1"), "application/xml", "<data/>"),
    )
    .await;
    d.step(
        "cm-patch-malformed-json",
        patch(cm("cm1"), MERGE_PATCH, "{not json"),
    )
    .await;
    d.step(
        "cm-patch-missing",
        patch(cm("cm-missing"), MERGE_PATCH, r#"{"data":{"a":"1"}}"#),
    )
    .await;
    // Lists and watches select the corpus's own objects by label: the real cluster's
    // controllers put a kube-root-ca.crt ConfigMap (and a default ServiceAccount) into every
    // namespace, objects of that server's setup, not answers to the corpus.
    d.step("cm-list", get(format!("{cms}?labelSelector=suite%3Ddiff")))
        .await;
    d.step(
        "cm-create-invalid-name",
        post(&cms, configmap("Bad_Name", json!({}))),
    )
    .await;
    let mut no_name = configmap("x", json!({}));
    no_name["metadata"].as_object_mut().unwrap().remove("name");
    d.step("cm-create-without-name", post(&cms, no_name)).await;
    let mut bad_label = configmap("cm-bad-label", json!({}));
    bad_label["metadata"]["labels"]["ok"] = json!("not valid!");
    d.step("cm-create-invalid-label", post(&cms, bad_label))
        .await;
    d.step(
        "cm-create-wrong-namespace",
        post(&cms, {
            let mut c = configmap("cm-wrong-ns", json!({}));
            c["metadata"]["namespace"] = json!("default");
            c
        }),
    )
    .await;
    d.step(
        "cm-create-missing-namespace",
        post(
            "/api/v1/namespaces/no-such-namespace/configmaps",
            configmap("cm-nowhere", json!({})),
        ),
    )
    .await;
    d.step(
        "cm-create-strict-unknown-field",
        post(format!("{cms}?fieldValidation=Strict"), {
            let mut c = configmap("cm-strict", json!({}));
            c["extra"] = json!(1);
            c
        }),
    )
    .await;
    // dryRun=All: answered as if done, nothing stored.
    d.step(
        "cm-create-dry-run",
        post(
            format!("{cms}?dryRun=All"),
            configmap("cm-dry", json!({"a": "1"})),
        ),
    )
    .await;
    d.step("cm-get-after-dry-run-create", get(cm("cm-dry")))
        .await;
    d.step(
        "cm-patch-dry-run",
        patch(
            format!("{}?dryRun=All", cm("cm1")),
            MERGE_PATCH,
            r#"{"data":{"dry":"run"}}"#,
        ),
    )
    .await;
    d.step("cm-get-after-dry-run-patch", get(cm("cm1"))).await;
    d.step(
        "cm-delete-dry-run",
        delete(format!("{}?dryRun=All", cm("cm1"))),
    )
    .await;
    d.step("cm-get-after-dry-run-delete", get(cm("cm1"))).await;
    d.step(
        "cm-dry-run-invalid-value",
        post(
            format!("{cms}?dryRun=Some"),
            configmap("cm-dry2", json!({})),
        ),
    )
    .await;
    // generateName.
    d.step(
        "cm-generate-name",
        post(&cms, {
            let mut c = configmap("x", json!({"g": "1"}));
            c["metadata"] = json!({"generateName": "gen-", "labels": {"suite": "diff"}});
            c
        }),
    )
    .await;
    d.step("cm-get-generated", get(cm("{name:cm-generate-name}")))
        .await;
    // Delete with a stale precondition, then for real.
    d.step(
        "cm-delete-stale-precondition",
        Req::new(Method::DELETE, cm("cm1")).with_body(
            "application/json",
            r#"{"preconditions":{"resourceVersion":"{rv:cm-create}"}}"#,
        ),
    )
    .await;
    d.step("cm-delete", delete(cm("cm1"))).await;
    d.step("cm-get-deleted", get(cm("cm1"))).await;
    d.step("cm-delete-missing", delete(cm("cm1"))).await;
    d.step("cm-delete-generated", delete(cm("{name:cm-generate-name}")))
        .await;
}

async fn server_side_apply(d: &mut Differ) {
    let ssa = |manager: &str, force: bool| {
        let mut path = format!("{}?fieldManager={manager}", cm("ssa1"));
        if force {
            path.push_str("&force=true");
        }
        path
    };
    let doc = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa1\n  labels:\n    suite: diff\ndata:\n{data}"
        )
    };
    d.step(
        "ssa-create",
        patch(
            ssa("alice", false),
            APPLY_PATCH,
            doc("  a: \"1\"\n  b: \"2\"\n"),
        ),
    )
    .await;
    d.step(
        "ssa-reapply-same",
        patch(
            ssa("alice", false),
            APPLY_PATCH,
            doc("  a: \"1\"\n  b: \"2\"\n"),
        ),
    )
    .await;
    // The manager no longer applies b: the server removes the field it alone owned.
    d.step(
        "ssa-reapply-drops-field",
        patch(ssa("alice", false), APPLY_PATCH, doc("  a: \"1\"\n")),
    )
    .await;
    // Another manager changing a field alice owns: a conflict unless forced.
    d.step(
        "ssa-conflict",
        patch(ssa("bob", false), APPLY_PATCH, doc("  a: \"9\"\n")),
    )
    .await;
    d.step(
        "ssa-force",
        patch(ssa("bob", true), APPLY_PATCH, doc("  a: \"9\"\n")),
    )
    .await;
    d.step(
        "ssa-without-field-manager",
        patch(cm("ssa1"), APPLY_PATCH, doc("  a: \"9\"\n")),
    )
    .await;
    d.step(
        "ssa-name-mismatch",
        patch(
            format!("{}?fieldManager=alice", cm("ssa-other")),
            APPLY_PATCH,
            doc("  a: \"1\"\n"),
        ),
    )
    .await;
    d.step("ssa-delete", delete(cm("ssa1"))).await;
}

async fn secrets(d: &mut Differ) {
    let secrets = core("secrets");
    d.step(
        "secret-create",
        post(
            &secrets,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"},
                "stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}}),
        ),
    )
    .await;
    d.step("secret-get", get(format!("{secrets}/s1"))).await;
    d.step(
        "secret-patch-strategic",
        patch(
            format!("{secrets}/s1"),
            STRATEGIC_PATCH,
            r#"{"stringData":{"token":"abc"}}"#,
        ),
    )
    .await;
    d.step(
        "secret-create-invalid-data",
        post(
            &secrets,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"},
                "data": {"bad key!": "YQ=="}}),
        ),
    )
    .await;
    d.step("secret-delete", delete(format!("{secrets}/s1")))
        .await;
}

async fn services(d: &mut Differ) {
    let svcs = core("services");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc1"},
        "spec": {"selector": {"app": "diff"}, "ports": [{"name": "http", "port": 80}]}});
    d.step("svc-create", post(&svcs, svc)).await;
    d.step("svc-get", get(format!("{svcs}/svc1"))).await;
    // An update of the main resource does not change status.
    let mut update = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "svc1", "resourceVersion": "{rv:svc-create}"},
        "spec": {"selector": {"app": "diff2"}, "ports": [{"name": "http", "port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}});
    d.step(
        "svc-update-ignores-status",
        put(format!("{svcs}/svc1"), update.clone()),
    )
    .await;
    // An update of /status changes status only.
    update["metadata"]["resourceVersion"] = json!("{rv:svc-update-ignores-status}");
    update["spec"]["selector"] = json!({"app": "changed-by-status-write"});
    update["status"] = json!({"conditions": [{"type": "Probed", "status": "True",
        "reason": "Checked", "message": "ok", "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
    d.step(
        "svc-status-update",
        put(format!("{svcs}/svc1/status"), update),
    )
    .await;
    d.step(
        "svc-status-patch",
        patch(
            format!("{svcs}/svc1/status"),
            MERGE_PATCH,
            r#"{"status":{"conditions":[{"type":"Probed","status":"False","reason":"Failed","message":"no","lastTransitionTime":"2024-01-02T00:00:00Z"}]}}"#,
        ),
    )
    .await;
    // Load-balancer ingress on a ClusterIP Service is rejected.
    d.step(
        "svc-status-ingress-not-load-balancer",
        patch(
            format!("{svcs}/svc1/status"),
            MERGE_PATCH,
            r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.2"}]}}}"#,
        ),
    )
    .await;
    // Strategic merge: ports merge by port number.
    d.step(
        "svc-patch-strategic",
        patch(
            format!("{svcs}/svc1"),
            STRATEGIC_PATCH,
            r#"{"spec":{"ports":[{"name":"https","port":443}]}}"#,
        ),
    )
    .await;
    d.step(
        "svc-create-without-ports",
        post(
            &svcs,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc2"},
                "spec": {"selector": {"app": "diff"}}}),
        ),
    )
    .await;
    d.step(
        "svc-create-invalid-name",
        post(
            &svcs,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc.dotted"},
                "spec": {"ports": [{"port": 80}]}}),
        ),
    )
    .await;
    d.step("svc-delete", delete(format!("{svcs}/svc1"))).await;
}

async fn pods(d: &mut Differ) {
    let pods = core("pods");
    let pod = |name: &str, spec: Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "diff"}}, "spec": spec})
    };
    d.step("pod-create", post(&pods, pod("pod1", pod_spec())))
        .await;
    // The real cluster's node agent binds and starts the pod; wait until it runs.
    d.wait_for("pod1 Running", &format!("{pods}/pod1"), is_running)
        .await;
    // A running pod's status is the node's (the real cluster's node agent stands in for
    // a kubelet; the simulator runs pods itself): not the API server's behaviour, and not
    // compared once the pod was created.
    let node_status = [".status"];
    d.step(
        "pod-get",
        get(format!("{pods}/pod1")).volatile(&node_status),
    )
    .await;
    d.step(
        "pod-patch-json",
        patch(
            format!("{pods}/pod1"),
            JSON_PATCH,
            r#"[{"op":"add","path":"/metadata/labels/tier","value":"web"}]"#,
        )
        .volatile(&node_status),
    )
    .await;
    d.step(
        "pod-patch-strategic-image",
        patch(
            format!("{pods}/pod1"),
            STRATEGIC_PATCH,
            r#"{"spec":{"containers":[{"name":"main","image":"busybox:1.37"}]}}"#,
        )
        .volatile(&node_status),
    )
    .await;
    d.step(
        "pod-patch-forbidden-field",
        patch(
            format!("{pods}/pod1"),
            JSON_PATCH,
            r#"[{"op":"replace","path":"/spec/containers/0/name","value":"renamed"}]"#,
        ),
    )
    .await;
    d.step(
        "pod-create-without-containers",
        post(&pods, pod("pod2", json!({"containers": []}))),
    )
    .await;
    d.step(
        "pod-create-without-image",
        post(
            &pods,
            pod("pod3", json!({"containers": [{"name": "main"}]})),
        ),
    )
    .await;
    d.step(
        "pod-delete",
        delete(format!("{pods}/pod1")).volatile(&node_status),
    )
    .await;
}

async fn jobs(d: &mut Differ) {
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job1"},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "exit 0"]}]}}}});
    d.step("job-create", post(jobs_path(), job.clone())).await;
    // After the create, each server's job controller writes the Job's status (start time,
    // active and finished pods) on its own schedule: compared through the create's answer
    // only.
    d.step(
        "job-get",
        get(format!("{}/job1", jobs_path())).volatile(&[".status"]),
    )
    .await;
    d.step("job-create-again", post(jobs_path(), job)).await;
    d.step(
        "job-patch-template-immutable",
        patch(
            format!("{}/job1", jobs_path()),
            STRATEGIC_PATCH,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"busybox:1.37"}]}}}}"#,
        ),
    )
    .await;
    d.step(
        "job-patch-merge-labels",
        patch(
            format!("{}/job1", jobs_path()),
            MERGE_PATCH,
            r#"{"metadata":{"labels":{"team":"diff"}}}"#,
        )
        .volatile(&[".status"]),
    )
    .await;
    d.step(
        "job-create-invalid-restart-policy",
        post(
            jobs_path(),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job2"},
                "spec": {"template": {"spec": {"restartPolicy": "Always",
                    "containers": [{"name": "main", "image": "busybox:1.36"}]}}}}),
        ),
    )
    .await;
    d.step(
        "job-delete",
        delete(format!("{}/job1?propagationPolicy=Background", jobs_path())).volatile(&[".status"]),
    )
    .await;
}

async fn recovery_plans(d: &mut Differ) {
    let path = format!("{}/plan1", plans_path());
    d.step("plan-create", post(plans_path(), recovery_plan("plan1")))
        .await;
    d.step("plan-get", get(&path)).await;
    d.step(
        "plan-create-again",
        post(plans_path(), recovery_plan("plan1")),
    )
    .await;
    // A custom resource update needs a resourceVersion.
    d.step("plan-update-without-rv", put(&path, recovery_plan("plan1")))
        .await;
    // An update of the main resource does not change status (the CRD has /status).
    let mut plan = recovery_plan("plan1");
    plan["metadata"]["resourceVersion"] = json!("{rv:plan-create}");
    plan["spec"]["suspend"] = json!(true);
    plan["status"] = json!({"validation": "Valid", "stepCount": 3});
    d.step("plan-update-ignores-status", put(&path, plan.clone()))
        .await;
    d.step("plan-update-stale", put(&path, plan.clone())).await;
    // An update of /status changes status only.
    plan["metadata"]["resourceVersion"] = json!("{rv:plan-update-ignores-status}");
    plan["spec"]["suspend"] = json!(false);
    d.step("plan-status-update", put(format!("{path}/status"), plan))
        .await;
    d.step(
        "plan-status-patch",
        patch(
            format!("{path}/status"),
            MERGE_PATCH,
            r#"{"status":{"stepCount":4,"lastRun":"run-1"}}"#,
        ),
    )
    .await;
    d.step(
        "plan-patch-merge-ignores-status",
        patch(
            &path,
            MERGE_PATCH,
            r#"{"spec":{"suspend":false},"status":{"validation":"Invalid"}}"#,
        ),
    )
    .await;
    d.step(
        "plan-patch-strategic-unsupported",
        patch(&path, STRATEGIC_PATCH, r#"{"spec":{"suspend":true}}"#),
    )
    .await;
    d.step(
        "plan-patch-json-invalid",
        patch(
            &path,
            JSON_PATCH,
            r#"[{"op":"replace","path":"/spec/steps","value":"not a list"}]"#,
        ),
    )
    .await;
    d.step(
        "plan-create-invalid",
        post(plans_path(), {
            let mut p = recovery_plan("plan2");
            p["spec"]["steps"] = json!("not a list");
            p
        }),
    )
    .await;
    d.step("plan-list", get(plans_path())).await;
    d.step("plan-delete", delete(&path)).await;
    d.step("plan-get-deleted", get(&path)).await;
    // CEL rules: a literal pattern broken at the top of the spec and under a step (whose
    // own rules the server evaluates too), and a null value, which rules do not validate.
    let mut bad_cooldown = recovery_plan("plan3");
    bad_cooldown["spec"]["cooldown"] = json!("1 day");
    d.step("plan-create-cel-pattern", post(plans_path(), bad_cooldown))
        .await;
    let mut bad_output_key = recovery_plan("plan3");
    bad_output_key["spec"]["steps"][0]["readField"]["outputKey"] = json!("1x");
    d.step(
        "plan-create-cel-pattern-in-step",
        post(plans_path(), bad_output_key),
    )
    .await;
    let mut null_cooldown = recovery_plan("plan4");
    null_cooldown["spec"]["cooldown"] = Value::Null;
    d.step("plan-create-cel-null", post(plans_path(), null_cooldown))
        .await;
    d.step(
        "plan-delete-cel-null",
        delete(format!("{}/plan4", plans_path())),
    )
    .await;
}

async fn widgets(d: &mut Differ) {
    let crd_path =
        format!("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{WIDGET_GROUP}");
    // The CRD's status at creation: before the real server's controllers accept its names.
    d.step(
        "crd-create",
        post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            widget_crd(),
        ),
    )
    .await;
    d.wait_for("widgets CRD established", &crd_path, crd_established)
        .await;
    d.step("crd-get", get(&crd_path)).await;
    let w = format!("{}/w1", widgets_path());
    // An unknown field (pruned, with a warning) and a defaulted one.
    d.step(
        "widget-create",
        post(
            widgets_path(),
            widget("w1", json!({"size": 2, "extra": true})),
        ),
    )
    .await;
    d.step("widget-get", get(&w)).await;
    d.step(
        "widget-create-invalid",
        post(widgets_path(), widget("w2", json!({"size": 0}))),
    )
    .await;
    d.step(
        "widget-create-wrong-type",
        post(widgets_path(), widget("w3", json!({"size": "big"}))),
    )
    .await;
    d.step(
        "widget-patch-json",
        patch(
            &w,
            JSON_PATCH,
            r#"[{"op":"add","path":"/spec/tags","value":["x"]},{"op":"add","path":"/spec/tags/-","value":"y"}]"#,
        ),
    )
    .await;
    d.step(
        "widget-patch-merge",
        patch(
            &w,
            MERGE_PATCH,
            r#"{"spec":{"size":3,"tags":["z"]},"status":{"ready":true}}"#,
        ),
    )
    .await;
    d.step(
        "widget-patch-merge-invalid",
        patch(&w, MERGE_PATCH, r#"{"spec":{"size":-1}}"#),
    )
    .await;
    d.step(
        "widget-status-patch",
        patch(
            format!("{w}/status"),
            MERGE_PATCH,
            r#"{"spec":{"size":100},"status":{"ready":true,"observedSize":3}}"#,
        ),
    )
    .await;
    d.step(
        "widget-status-patch-json",
        patch(
            format!("{w}/status"),
            JSON_PATCH,
            r#"[{"op":"replace","path":"/status/ready","value":false}]"#,
        ),
    )
    .await;
    d.step(
        "widget-apply-create",
        patch(
            format!("{}/w4?fieldManager=alice", widgets_path()),
            APPLY_PATCH,
            format!(
                "apiVersion: {WIDGET_GROUP}/v1\nkind: Widget\nmetadata:\n  name: w4\nspec:\n  size: 5\n  tags: [a, b]\n"
            ),
        ),
    )
    .await;
    d.step(
        "widget-apply-update",
        patch(
            format!("{}/w4?fieldManager=alice", widgets_path()),
            APPLY_PATCH,
            format!(
                "apiVersion: {WIDGET_GROUP}/v1\nkind: Widget\nmetadata:\n  name: w4\nspec:\n  size: 6\n"
            ),
        ),
    )
    .await;
    d.step(
        "widget-generate-name",
        post(widgets_path(), {
            let mut x = widget("x", json!({"size": 1}));
            x["metadata"] = json!({"generateName": "w-"});
            x
        }),
    )
    .await;
    d.step("widget-list", get(widgets_path())).await;
    d.step("widget-delete", delete(&w)).await;
    d.step("widget-get-deleted", get(&w)).await;
    d.step("widget-delete-missing", delete(&w)).await;
}

/// Watch from a known resourceVersion: the events after it, in order.
async fn watches(d: &mut Differ) {
    let cms = core("configmaps");
    let labelled = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"watch": "w"}}, "data": {"n": name}})
    };
    d.step("watch-seed", post(&cms, labelled("watch-1"))).await;
    d.step("watch-add", post(&cms, labelled("watch-2"))).await;
    d.step(
        "watch-modify",
        patch(cm("watch-2"), MERGE_PATCH, r#"{"data":{"n":"changed"}}"#),
    )
    .await;
    d.step("watch-delete", delete(cm("watch-1"))).await;
    // No longer matching the selector: a DELETED event for the watcher.
    d.step(
        "watch-unlabel",
        patch(
            cm("watch-2"),
            MERGE_PATCH,
            r#"{"metadata":{"labels":{"watch":null}}}"#,
        ),
    )
    .await;
    d.step("watch-add-last", post(&cms, labelled("watch-3")))
        .await;
    d.watch(
        "watch-from-rv",
        get(format!(
            "{cms}?watch=true&labelSelector=watch%3Dw&resourceVersion={{rv:watch-seed}}&timeoutSeconds={WATCH_TIMEOUT_SECONDS}"
        )),
        "watch-3",
    )
    .await;
    // A watch on one object by name (a field selector).
    d.watch(
        "watch-one-object",
        get(format!(
            "{cms}?watch=true&fieldSelector=metadata.name%3Dwatch-2&resourceVersion={{rv:watch-seed}}&timeoutSeconds={WATCH_TIMEOUT_SECONDS}"
        )),
        "<never>",
    )
    .await;
}

/// Impersonating a ServiceAccount, without and then with a Role and RoleBinding.
async fn impersonation(d: &mut Differ) {
    let as_robot = |r: Req| r.header("Impersonate-User", ROBOT);
    d.step(
        "imp-seed",
        post(core("configmaps"), configmap("imp1", json!({"a": "1"}))),
    )
    .await;
    d.step("imp-get-forbidden", as_robot(get(cm("imp1")))).await;
    d.step("imp-list-forbidden", as_robot(get(core("configmaps"))))
        .await;
    let rbac = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}");
    d.step(
        "rbac-role-create",
        post(
            format!("{rbac}/roles"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "cm-reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}),
        ),
    )
    .await;
    d.step(
        "rbac-rolebinding-create",
        post(
            format!("{rbac}/rolebindings"),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "robot-reads"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": NS}]}),
        ),
    )
    .await;
    tokio::join!(
        d.real.wait_allowed(ROBOT, "get", "configmaps", NS),
        d.sim.wait_allowed(ROBOT, "get", "configmaps", NS)
    );
    d.step("imp-get-allowed", as_robot(get(cm("imp1")))).await;
    d.step("imp-delete-still-forbidden", as_robot(delete(cm("imp1"))))
        .await;
    d.step(
        "imp-get-other-namespace-forbidden",
        as_robot(get(
            "/api/v1/namespaces/default/configmaps/kube-root-ca.crt",
        )),
    )
    .await;
}

/// Who a request comes from (SelfSubjectReview, which `lifeboat approve` asks), and the
/// shipped admission policy that refuses an approval naming anyone but its author.
async fn approvals(d: &mut Differ) {
    let ssr = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    d.step("ssr-create", post(ssr, review.clone())).await;
    d.step(
        "ssr-create-impersonated",
        post(ssr, review).header("Impersonate-User", ROBOT),
    )
    .await;

    let policy_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/policy/approver-identity.yaml");
    let text = std::fs::read_to_string(&policy_file)
        .unwrap_or_else(|e| panic!("reading {}: {e}", policy_file.display()));
    let admission = "/apis/admissionregistration.k8s.io/v1";
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let obj = serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap();
        let (id, plural) = match obj["kind"].as_str() {
            Some("ValidatingAdmissionPolicy") => ("vap-create", "validatingadmissionpolicies"),
            Some("ValidatingAdmissionPolicyBinding") => {
                ("vap-binding-create", "validatingadmissionpolicybindings")
            }
            other => panic!("unexpected kind {other:?} in {}", policy_file.display()),
        };
        d.step(id, post(format!("{admission}/{plural}"), obj)).await;
    }
    let approvals = format!("/apis/recovery.elotl.co/v1alpha1/namespaces/{NS}/recoveryapprovals");
    let forged = |name: &str| {
        json!({"apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryApproval",
            "metadata": {"name": name},
            "spec": {"runName": "run", "step": 0, "decision": "Approve", "approver": "someone-else"}})
    };
    // The real server loads policies asynchronously: wait until it enforces this one.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let probe = post(format!("{approvals}?dryRun=All"), forged("probe"));
    while d.real.send(&probe).await.code != 403 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the approver-identity policy never took effect on the real server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.step("approval-forged", post(&approvals, forged("forged")))
        .await;
}

/// A watch from a resourceVersion the server no longer has events for: an ERROR event
/// with 410 Expired.
async fn expired_watch(d: &mut Differ) {
    // The real server's watch cache of a resource starts with the list it makes when it
    // begins serving the resource: for the Widgets, when their CRD was established. A
    // version from before that (the namespace's creation) is outside its window, exactly
    // what a client resuming after the window moved on gets.
    d.watch(
        "watch-expired-before-crd",
        get(format!(
            "{}?watch=true&resourceVersion={{rv:ns-create}}&timeoutSeconds={WATCH_TIMEOUT_SECONDS}",
            widgets_path()
        )),
        "<never>",
    )
    .await;
    // Not compared: a watch from before an etcd compaction. The real server compacts etcd
    // every five minutes (`--etcd-compaction-interval`, not set by testing/kube), too
    // rarely for a test; the simulator compacts on demand (`Faults::expire_watches`), which
    // its own tests cover.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_matches_kube_apiserver() {
    let started = std::time::Instant::now();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(KNOWN_DIFFERENCES);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let known: Vec<Known> = serde_yaml::from_str::<Option<Vec<Known>>>(&text)
        .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
        .unwrap_or_default();
    let (kube, sim) = tokio::join!(
        TestCluster::start_on("diff-kube", Backend::Kube),
        TestCluster::start_on("diff-sim", Backend::Sim)
    );
    let mut d = Differ {
        real: Endpoint::new(&kube),
        sim: Endpoint::new(&sim),
        steps: Vec::new(),
        diffs: Vec::new(),
    };
    namespaces(&mut d).await;
    configmaps(&mut d).await;
    server_side_apply(&mut d).await;
    secrets(&mut d).await;
    services(&mut d).await;
    pods(&mut d).await;
    jobs(&mut d).await;
    recovery_plans(&mut d).await;
    widgets(&mut d).await;
    watches(&mut d).await;
    impersonation(&mut d).await;
    approvals(&mut d).await;
    expired_watch(&mut d).await;

    println!(
        "{} requests, {} differences ({} known-difference entries), {:.1}s",
        d.steps.len(),
        d.diffs.len(),
        known.len(),
        started.elapsed().as_secs_f64()
    );
    let problems = check_known(&known, &d.diffs, &d.steps);
    assert!(
        problems.is_empty(),
        "{}\n\nreal control plane log:\n{}",
        problems.join("\n"),
        kube.server_log()
    );
}
