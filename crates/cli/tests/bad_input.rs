//! The bad-input catalogue (SPEC §10): malformed webhook bodies, plans, templates and field
//! paths, each answered with a clear error — an exact HTTP status (400/401/404/405/413/422)
//! or an `Invalid` condition — and a message naming the problem; never a panic, a hang, or
//! anything created. Everything runs against the real `lifeboat controller` binary and a
//! simulator cluster.
//!
//! - webhook bodies: the table in [`webhook_cases`];
//! - plans: one file per case in `fixtures/bad_input/plans/`, whose first line says what
//!   must happen: `# expect: 422 <text>` (the CRD schema rejects it) or
//!   `# expect: Invalid <text>` (`Valid=False` with that text in the condition message);
//! - templates and field paths at run time: the table in [`runtime_cases`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/webhook_harness.rs"]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

use harness::{Controller, Env, NS, Opts, TOKEN, am_alert, am_payload, apply_plan, wait_for};
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;
use lifeboat_api::{ReceivedAlert, RecoveryPlan, RecoveryRun, RunPhase};
use serde_json::{Value, json};

/// Longest any wait may take.
const DEADLINE: Duration = Duration::from_secs(60);
const STARTS_AT: &str = "2024-05-01T10:00:00Z";

// ---------------------------------------------------------------------------------------
// Webhook bodies
// ---------------------------------------------------------------------------------------

/// One request to the webhook and the reply it must get.
struct WebhookCase {
    name: &'static str,
    method: reqwest::Method,
    path: &'static str,
    token: Option<&'static str>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// Text the reply body must contain.
    needle: String,
}

fn case(name: &'static str, body: impl Into<Vec<u8>>, status: u16, needle: &str) -> WebhookCase {
    WebhookCase {
        name,
        method: reqwest::Method::POST,
        path: "/webhook",
        token: Some(TOKEN),
        content_type: Some("application/json"),
        body: body.into(),
        status,
        needle: needle.to_string(),
    }
}

/// A valid notification with one firing alert that a plan of the test matches.
fn good() -> Value {
    am_payload(
        "lifeboat",
        vec![am_alert(
            "firing",
            &[("alertname", "BadInput"), ("case", "webhook")],
            STARTS_AT,
            Some("b0b0b0b0b0b0b0b0"),
        )],
    )
}

/// `good()` changed by `f`, as bytes.
fn with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = good();
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn remove(v: &mut Value, key: &str) {
    v.as_object_mut().unwrap().remove(key);
}

fn webhook_cases() -> Vec<WebhookCase> {
    let deep = 100_000;
    let mut cases = vec![
        case("empty body", "", 400, "invalid JSON: EOF while parsing"),
        case(
            "not JSON",
            "alert: down",
            400,
            "invalid JSON: expected value",
        ),
        case(
            "JSON array",
            "[]",
            400,
            "invalid JSON: the body must be a JSON object (an Alertmanager notification), got a list",
        ),
        case(
            "JSON string",
            "\"4\"",
            400,
            "invalid JSON: the body must be a JSON object (an Alertmanager notification), got a string",
        ),
        case(
            "JSON null",
            "null",
            400,
            "invalid JSON: the body must be a JSON object (an Alertmanager notification), got null",
        ),
        case(
            "alert given as a list of its fields",
            with(|v| v["alerts"] = json!([["firing", {"alertname": "BadInput"}, {}, STARTS_AT]])),
            400,
            "invalid JSON: alerts[0] must be an object, got a list",
        ),
        case(
            "truncated JSON",
            {
                let mut b = with(|_| {});
                b.truncate(b.len() / 2);
                b
            },
            400,
            "invalid JSON: EOF while parsing",
        ),
        case(
            "trailing garbage",
            [with(|_| {}), b" {}".to_vec()].concat(),
            400,
            "invalid JSON: trailing characters",
        ),
        case(
            "invalid UTF-8",
            [
                b"{\"version\": \"4\", \"receiver\": \"".to_vec(),
                vec![0xff, 0xfe],
                b"\", \"alerts\": []}".to_vec(),
            ]
            .concat(),
            400,
            "invalid JSON: invalid unicode code point",
        ),
        case(
            "lone surrogate escape",
            r#"{"version": "4", "receiver": "\ud800", "alerts": []}"#,
            400,
            "invalid JSON: unexpected end of hex escape",
        ),
        case(
            "duplicate key, the last one wrong",
            r#"{"version": "4", "version": "3", "alerts": []}"#,
            400,
            r#"version: must be \"4\" (Alertmanager webhook payload version 4), got \"3\""#,
        ),
        case(
            "wrong version",
            with(|v| v["version"] = json!("3")),
            400,
            r#"version: must be \"4\" (Alertmanager webhook payload version 4), got \"3\""#,
        ),
        case(
            "version a number",
            with(|v| v["version"] = json!(4)),
            400,
            "invalid JSON: invalid type: integer `4`, expected a string",
        ),
        case(
            "missing version",
            with(|v| remove(v, "version")),
            400,
            r#"version: required (must be \"4\")"#,
        ),
        case(
            "missing alerts",
            with(|v| remove(v, "alerts")),
            400,
            "alerts: required (a list of alerts)",
        ),
        case(
            "alerts not a list",
            with(|v| v["alerts"] = json!({"status": "firing"})),
            400,
            "invalid JSON: invalid type: map, expected a sequence",
        ),
        case(
            "alert not an object",
            with(|v| v["alerts"] = json!(["DatabaseDown"])),
            400,
            "invalid JSON: alerts[0] must be an object, got a string",
        ),
        case(
            "alert without labels",
            with(|v| remove(&mut v["alerts"][0], "labels")),
            400,
            "alerts[0].labels: required",
        ),
        case(
            "empty labels",
            with(|v| v["alerts"][0]["labels"] = json!({})),
            400,
            "alerts[0].labels: must not be empty",
        ),
        case(
            "label value a number",
            with(|v| v["alerts"][0]["labels"]["severity"] = json!(3)),
            400,
            "invalid JSON: invalid type: integer `3`, expected a string",
        ),
        case(
            "label value null",
            with(|v| v["alerts"][0]["labels"]["severity"] = Value::Null),
            400,
            "invalid JSON: invalid type: null, expected a string",
        ),
        case(
            "label value an object",
            with(|v| v["alerts"][0]["labels"]["severity"] = json!({"level": 1})),
            400,
            "invalid JSON: invalid type: map, expected a string",
        ),
        case(
            "empty label name",
            with(|v| v["alerts"][0]["labels"][""] = json!("x")),
            400,
            r#"alerts[0].labels: label name \"\" is empty"#,
        ),
        case(
            "bad alert status",
            with(|v| v["alerts"][0]["status"] = json!("burning")),
            400,
            r#"alerts[0].status: must be \"firing\" or \"resolved\", got \"burning\""#,
        ),
        case(
            "missing alert status",
            with(|v| remove(&mut v["alerts"][0], "status")),
            400,
            r#"alerts[0].status: required (\"firing\" or \"resolved\")"#,
        ),
        case(
            "bad notification status",
            with(|v| v["status"] = json!("FIRING")),
            400,
            r#"status: must be \"firing\" or \"resolved\", got \"FIRING\""#,
        ),
        case(
            "bad startsAt",
            with(|v| v["alerts"][0]["startsAt"] = json!("yesterday")),
            400,
            r#"alerts[0].startsAt: must be an RFC 3339 timestamp, got \"yesterday\""#,
        ),
        case(
            "startsAt without a zone",
            with(|v| v["alerts"][0]["startsAt"] = json!("2024-05-01T10:00:00")),
            400,
            "alerts[0].startsAt: must be an RFC 3339 timestamp",
        ),
        case(
            "startsAt a number",
            with(|v| v["alerts"][0]["startsAt"] = json!(1714557600)),
            400,
            "invalid JSON: invalid type: integer `1714557600`, expected a string",
        ),
        case(
            "missing startsAt",
            with(|v| remove(&mut v["alerts"][0], "startsAt")),
            400,
            "alerts[0].startsAt: required",
        ),
        case(
            "bad endsAt",
            with(|v| v["alerts"][0]["endsAt"] = json!("2024-13-45T99:00:00Z")),
            400,
            "alerts[0].endsAt: must be an RFC 3339 timestamp",
        ),
        case(
            "negative truncatedAlerts",
            with(|v| v["truncatedAlerts"] = json!(-1)),
            400,
            "invalid JSON: invalid value: integer `-1`, expected u64",
        ),
        case(
            "fingerprint a number",
            with(|v| v["alerts"][0]["fingerprint"] = json!(12345)),
            400,
            "invalid JSON: invalid type: integer `12345`, expected a string",
        ),
        case(
            "huge label value",
            with(|v| v["alerts"][0]["labels"]["description"] = json!("x".repeat(100_000))),
            400,
            r#"alerts[0].labels[\"description\"]: value is 100000 bytes long, more than the limit of 16384"#,
        ),
        case(
            "huge label name",
            with(|v| v["alerts"][0]["labels"]["n".repeat(5000)] = json!("x")),
            400,
            "is 5000 bytes long, more than the limit of 1024",
        ),
        case(
            "huge receiver name",
            with(|v| v["receiver"] = json!("r".repeat(1000))),
            400,
            "receiver: 1000 bytes long, more than the limit of 256",
        ),
        case(
            "NUL in a label name",
            with(|v| v["alerts"][0]["labels"]["app\u{0}"] = json!("db")),
            400,
            r#"alerts[0].labels: label name \"app\\0\" contains a control character"#,
        ),
        case(
            "NUL in a label value",
            with(|v| v["alerts"][0]["labels"]["app"] = json!("db\u{0}")),
            400,
            r#"alerts[0].labels[\"app\"]: value contains a NUL character"#,
        ),
        case(
            "deeply nested alerts",
            format!(
                r#"{{"version": "4", "alerts": {}{}}}"#,
                "[".repeat(deep),
                "]".repeat(deep)
            ),
            400,
            "invalid JSON: recursion limit exceeded",
        ),
        case(
            "deeply nested unknown field",
            format!(
                r#"{{"version": "4", "extra": {}, "alerts": []}}"#,
                "{\"a\":".repeat(deep) + "1" + &"}".repeat(deep)
            ),
            400,
            "invalid JSON: recursion limit exceeded",
        ),
        case(
            "the last of 2000 alerts is bad",
            with(|v| {
                let mut alerts: Vec<Value> = (0..2000)
                    .map(|i| {
                        am_alert(
                            "firing",
                            &[("alertname", "BadInput"), ("n", &i.to_string())],
                            STARTS_AT,
                            None,
                        )
                    })
                    .collect();
                alerts[1999]["startsAt"] = json!("not a time");
                v["alerts"] = json!(alerts);
            }),
            400,
            "alerts[1999].startsAt: must be an RFC 3339 timestamp",
        ),
        case(
            "10 MB body",
            with(|v| v["commonAnnotations"]["padding"] = json!("x".repeat(10 << 20))),
            413,
            "request body larger than 1048576 bytes",
        ),
    ];
    let mut wrong_type = case(
        "wrong content type",
        with(|_| {}),
        400,
        "Content-Type must be application/json",
    );
    wrong_type.content_type = Some("text/plain");
    cases.push(wrong_type);
    let mut no_type = case(
        "no content type",
        with(|_| {}),
        400,
        "Content-Type must be application/json",
    );
    no_type.content_type = None;
    cases.push(no_type);
    let mut form = case(
        "form content type",
        "version=4",
        400,
        "Content-Type must be application/json",
    );
    form.content_type = Some("application/x-www-form-urlencoded");
    cases.push(form);
    let mut no_token = case(
        "no bearer token",
        with(|_| {}),
        401,
        "missing or invalid bearer token",
    );
    no_token.token = None;
    cases.push(no_token);
    let mut bad_token = case(
        "wrong bearer token",
        with(|_| {}),
        401,
        "missing or invalid bearer token",
    );
    bad_token.token = Some("not-the-token");
    cases.push(bad_token);
    let mut tenant = case(
        "tenant namespace not enabled",
        with(|_| {}),
        404,
        r#"namespace \"team-x\" is not served by this receiver"#,
    );
    tenant.path = "/webhook/team-x";
    cases.push(tenant);
    let mut get = case("GET instead of POST", "", 405, "");
    get.method = reqwest::Method::GET;
    cases.push(get);
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_webhook_bodies_get_a_4xx_naming_the_problem_and_create_nothing() {
    let env = Env::start(&[]).await;
    // A plan that would run for the test's alert, were any of them recorded.
    apply_plan(&env, NS, "catch-bad-input", &[("alertname", "BadInput")]).await;
    let ctl = Controller::start(&env, &Opts::with_token()).await;
    let http = reqwest::Client::new();

    let cases = webhook_cases();
    assert!(cases.len() >= 40, "the catalogue has {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let mut req = http
            .request(c.method.clone(), ctl.url(c.path))
            .body(c.body.clone());
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = c.token {
            req = req.bearer_auth(t);
        }
        let resp = match tokio::time::timeout(DEADLINE, req.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                failures.push(format!("{}: request failed: {e}", c.name));
                continue;
            }
            Err(_) => {
                failures.push(format!("{}: no reply within {DEADLINE:?}", c.name));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status != c.status || !text.contains(&c.needle) {
            let shown: String = text.chars().take(300).collect();
            failures.push(format!(
                "{}: want {} with {:?}, got {status}: {shown}",
                c.name, c.status, c.needle
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\ncontroller log:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        ctl.log_text()
    );

    // A client still sending an oversized body gets the 413, never a connection reset.
    let huge = with(|v| v["commonAnnotations"]["padding"] = json!("x".repeat(4 << 20)));
    for i in 0..5 {
        let resp = http
            .post(ctl.url("/webhook"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("oversized request {i}: no answer: {e}"));
        assert_eq!(resp.status(), 413, "oversized request {i}");
    }

    // Nothing recorded, nothing started, and the receiver still works.
    assert_eq!(
        env.alerts(NS).await.len(),
        0,
        "a rejected request recorded an alert"
    );
    assert!(
        env.runs(NS).await.is_empty(),
        "a rejected request started a run"
    );
    let unicode = am_payload(
        "lifeboat",
        vec![am_alert(
            "firing",
            &[
                ("alertname", "Ünïcödé"),
                ("région", "東京 🚒"),
                ("quote", "\"}\n"),
            ],
            STARTS_AT,
            None,
        )],
    );
    let (status, body) = harness::post(&http, &ctl.url("/webhook"), Some(TOKEN), &unicode).await;
    assert_eq!(status, 200, "unicode labels are valid: {body}");
    let stored = env.alerts(NS).await;
    assert_eq!(stored.len(), 1, "exactly the valid alert is recorded");
    assert_eq!(stored[0].spec.labels["région"], "東京 🚒");
    assert_eq!(stored[0].spec.labels["quote"], "\"}\n");
    let log = ctl.log_text();
    assert!(!log.contains("panicked"), "the controller panicked:\n{log}");
}

// ---------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------

/// What must happen to a plan.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// Rejected by the API server (CRD schema) with this status code.
    Status(u16),
    /// Stored, then marked `Valid=False` by the controller.
    Invalid,
}

struct PlanCase {
    name: String,
    plan: Value,
    expect: Expect,
    needle: String,
}

fn plan_cases() -> Vec<PlanCase> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad_input/plans");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap_or_default();
            let rest = first
                .strip_prefix("# expect: ")
                .unwrap_or_else(|| panic!("{}: first line must be '# expect: …'", path.display()));
            let (what, needle) = rest.split_once(' ').unwrap();
            let expect = match what {
                "Invalid" => Expect::Invalid,
                code => Expect::Status(code.parse().unwrap()),
            };
            let mut plan: Value =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            plan["metadata"]["namespace"] = json!(NS);
            let name = plan["metadata"]["name"].as_str().unwrap().to_string();
            assert_eq!(
                path.file_stem().unwrap().to_str().unwrap(),
                name,
                "a fixture's file is named after its plan"
            );
            PlanCase {
                name,
                plan,
                expect,
                needle: needle.to_string(),
            }
        })
        .collect()
}

fn plans_resource() -> ApiResource {
    ApiResource {
        group: "recovery.elotl.co".into(),
        version: "v1alpha1".into(),
        api_version: "recovery.elotl.co/v1alpha1".into(),
        kind: "RecoveryPlan".into(),
        plural: "recoveryplans".into(),
    }
}

/// The `Valid` condition of a plan once the controller has validated its generation.
fn valid_condition(plan: &RecoveryPlan) -> Option<(String, String, String)> {
    let status = plan.status.as_ref()?;
    if status.observed_generation != plan.metadata.generation {
        return None;
    }
    let c = status.conditions.iter().find(|c| c.type_ == "Valid")?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_plans_are_rejected_or_invalid_and_never_run() {
    let env = Env::start(&[]).await;
    env.apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bad-input", "namespace": NS},
        "data": {"primary": "db-0"},
    }))
    .await;
    let ctl = Controller::start(&env, &Opts::with_token()).await;
    let cases = plan_cases();
    assert!(cases.len() >= 40, "the catalogue has {} plans", cases.len());
    let api: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), NS, &plans_resource());
    let plans: Api<RecoveryPlan> = Api::namespaced(env.client.clone(), NS);
    let mut failures = Vec::new();
    let mut stored = Vec::new();
    for c in &cases {
        let obj: DynamicObject = serde_json::from_value(c.plan.clone()).unwrap();
        match (api.create(&PostParams::default(), &obj).await, &c.expect) {
            (Err(kube::Error::Api(s)), Expect::Status(code)) => {
                if s.code != *code || !s.message.contains(&c.needle) {
                    failures.push(format!(
                        "{}: want {code} with {:?}, got {}: {}",
                        c.name, c.needle, s.code, s.message
                    ));
                }
            }
            (Err(e), _) => failures.push(format!("{}: want {:?}, got {e}", c.name, c.expect)),
            (Ok(_), Expect::Status(code)) => {
                failures.push(format!("{}: want {code}, but the plan was stored", c.name));
                stored.push(c);
            }
            (Ok(_), Expect::Invalid) => stored.push(c),
        }
    }
    // Every stored plan: Valid=False, reason Invalid, the message naming step and field.
    for c in &stored {
        let name = c.name.clone();
        let cond = wait_for(&format!("plan {name} validated"), DEADLINE, || {
            let plans = plans.clone();
            let name = name.clone();
            async move {
                let p = plans.get(&name).await.map_err(|e| e.to_string())?;
                valid_condition(&p).ok_or_else(|| format!("status: {:?}", p.status))
            }
        })
        .await;
        let (status, reason, message) = &cond;
        if status != "False"
            || reason != "Invalid"
            || !message.contains(&c.needle)
            || c.expect != Expect::Invalid
        {
            failures.push(format!(
                "{}: want Valid=False/Invalid with {:?}, got {status}/{reason}: {message}",
                c.name, c.needle
            ));
        }
    }

    // An alert matching each plan starts nothing: the invalid plans are skipped as Invalid.
    let http = reqwest::Client::new();
    let alerts: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            am_alert(
                "firing",
                &[("alertname", "BadInput"), ("case", c.name.as_str())],
                STARTS_AT,
                Some(&format!("{i:016x}")),
            )
        })
        .collect();
    let (status, body) = harness::post(
        &http,
        &ctl.url("/webhook"),
        Some(TOKEN),
        &am_payload("lifeboat", alerts),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let alert_api: Api<ReceivedAlert> = Api::namespaced(env.client.clone(), NS);
    let want = cases.len();
    let processed = wait_for("every alert processed", DEADLINE, || {
        let alert_api = alert_api.clone();
        async move {
            let all = alert_api
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?
                .items;
            let done = all
                .iter()
                .filter(|a| a.status.as_ref().is_some_and(|s| s.processed))
                .count();
            if all.len() == want && done == all.len() {
                Ok(all)
            } else {
                Err(format!("{done} of {} processed", all.len()))
            }
        }
    })
    .await;
    for a in &processed {
        let case = a.spec.labels.get("case").cloned().unwrap_or_default();
        let s = a.status.clone().unwrap_or_default();
        if !s.runs.is_empty() {
            failures.push(format!("{case}: the alert started runs {:?}", s.runs));
        }
        let Some(plan) = stored.iter().find(|c| c.name == case) else {
            continue;
        };
        let skipped_invalid = s
            .skipped
            .iter()
            .any(|k| k.plan == case && k.reason == "Invalid");
        // An empty label set matches no alert at all.
        let matchable = plan.plan["spec"]["alertLabels"]
            .as_object()
            .is_some_and(|m| !m.is_empty());
        if matchable && !skipped_invalid {
            failures.push(format!(
                "{case}: the alert should skip the plan as Invalid, status: {s:?}"
            ));
        }
        if !matchable && s.reason.as_deref() != Some("NoMatchingPlan") {
            failures.push(format!(
                "{case}: a plan without alertLabels must match nothing, status: {s:?}"
            ));
        }
    }
    let runs: Vec<RecoveryRun> = env.runs(NS).await;
    if !runs.is_empty() {
        failures.push(format!(
            "runs were created: {:?}",
            runs.iter()
                .map(|r| r.metadata.name.clone())
                .collect::<Vec<_>>()
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\ncontroller log:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        ctl.log_text()
    );
}

// ---------------------------------------------------------------------------------------
// Templates and field paths at run time
// ---------------------------------------------------------------------------------------

struct RunCase {
    name: &'static str,
    steps: Value,
    /// Text the failed run's message must contain.
    needle: &'static str,
}

fn read(field_path: &str, output_key: &str) -> Value {
    json!({"type": "readField", "readField": {
        "apiVersion": "v1", "resource": "configmaps", "namespace": NS, "name": "bad-input",
        "fieldPath": field_path, "outputKey": output_key,
    }})
}

fn patch(raw: Value) -> Value {
    json!({"type": "patch", "patch": {
        "apiVersion": "v1", "resource": "configmaps", "namespace": NS, "name": "bad-input",
        "override": {"fieldPath": "data.target", "value": {"raw": raw}},
        "patchType": "application/merge-patch+json",
    }})
}

fn runtime_cases() -> Vec<RunCase> {
    vec![
        RunCase {
            name: "template-missing-alert-label",
            steps: json!([
                read("data.primary", "primary"),
                patch(json!("{{ .Alert.Labels.region }}"))
            ]),
            needle: "step 2 (patch configmaps/bad-input) failed: cannot render the patch value: missing key .Alert.Labels.region",
        },
        RunCase {
            name: "template-missing-nested-value",
            steps: json!([
                read("data", "cfg"),
                patch(json!({"host": "{{ .Values.cfg.replica }}"}))
            ]),
            needle: "cannot render the patch value: host: missing key .Values.cfg.replica",
        },
        RunCase {
            name: "template-index-missing-key",
            steps: json!([
                read("data", "cfg"),
                patch(json!("{{ index .Values.cfg \"absent\" }}"))
            ]),
            needle: "missing key \"absent\" (index)",
        },
        RunCase {
            name: "readfield-missing-path",
            steps: json!([read("data.replica", "replica")]),
            needle: "step 1 (readField configmaps/bad-input) failed: field data.replica not found in configmaps lifeboat-system/bad-input",
        },
        RunCase {
            name: "readfield-wrong-type",
            steps: json!([read("data.primary.host", "host")]),
            needle: "field data.primary is a string, expected an object",
        },
        RunCase {
            name: "readfield-missing-object",
            steps: json!([{"type": "readField", "readField": {
                "apiVersion": "v1", "resource": "configmaps", "namespace": NS, "name": "no-such-map",
                "fieldPath": "data.primary", "outputKey": "primary",
            }}]),
            needle: "cannot read configmaps lifeboat-system/no-such-map: configmaps \"no-such-map\" not found (404 NotFound)",
        },
        RunCase {
            name: "hand-written-run-bad-fieldpath",
            steps: json!([read("data[*]", "all")]),
            needle: "the run is invalid: spec.steps[0].readField.fieldPath: invalid fieldPath \"data[*]\" at position 5: wildcards",
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_fail_with_a_message_naming_the_missing_key_or_field() {
    let env = Env::start(&[]).await;
    env.apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bad-input", "namespace": NS},
        "data": {"primary": "db-0", "target": "unchanged"},
    }))
    .await;
    let ctl = Controller::start(&env, &Opts::default()).await;
    let runs: Api<RecoveryRun> = Api::namespaced(env.client.clone(), NS);
    let cases = runtime_cases();
    for c in &cases {
        let run: RecoveryRun = serde_json::from_value(json!({
            "apiVersion": "recovery.elotl.co/v1alpha1", "kind": "RecoveryRun",
            "metadata": {"name": c.name, "namespace": NS},
            "spec": {
                "alertSpec": {"name": "bad-input", "labels": {"alertname": "BadInput"}},
                "steps": c.steps,
            },
        }))
        .unwrap();
        runs.create(&PostParams::default(), &run).await.unwrap();
    }
    let mut failures = Vec::new();
    for c in &cases {
        let run = wait_for(&format!("run {} finished", c.name), DEADLINE, || {
            let runs = runs.clone();
            async move {
                let r = runs.get(c.name).await.map_err(|e| e.to_string())?;
                match r.status.as_ref().map(|s| s.phase) {
                    Some(p) if p.is_finished() => Ok(r),
                    _ => Err(format!("status: {:?}", r.status)),
                }
            }
        })
        .await;
        let status = run.status.unwrap_or_default();
        let message = status.message.clone().unwrap_or_default();
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Success")
            .map(|c| (c.status.clone(), c.message.clone().unwrap_or_default()));
        if status.phase != RunPhase::Failed || !message.contains(c.needle) {
            failures.push(format!(
                "{}: want Failed with {:?}, got {:?}: {message}",
                c.name, c.needle, status.phase
            ));
        }
        match condition {
            Some((s, m)) if s == "False" && m.contains(c.needle) => {}
            other => failures.push(format!(
                "{}: want condition Success=False with {:?}, got {other:?}",
                c.name, c.needle
            )),
        }
    }
    // The failed patches changed nothing.
    let cm = env
        .cluster
        .get("v1", "configmaps", Some(NS), "bad-input")
        .await
        .unwrap();
    assert_eq!(cm["data"]["target"], "unchanged", "a failed step patched");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\ncontroller log:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        ctl.log_text()
    );
}
