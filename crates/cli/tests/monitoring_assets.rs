//! The monitoring assets hold together: every metric the shipped alerting rules and Grafana
//! dashboard query is one the real `lifeboat controller` exports on /metrics, and every
//! exported metric has a dashboard panel; every alert has a severity, a summary, a
//! description, a runbook section and unit tests that fire it and keep it quiet; the
//! FerretDB example's alert carries the labels its plan matches, and the example
//! Alertmanager sends exactly those to lifeboat's webhook. (promtool and amtool check the
//! same files' syntax and behaviour in scripts/check-monitoring.sh.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use common::*;
use lifeboat_testkit::wait::wait_plan_validated;
use serde_json::{Value, json};

const RULES: &str = "charts/lifeboat/files/prometheus-rules.yaml";
const DASHBOARD: &str = "charts/lifeboat/files/grafana-dashboard.json";
const RUNBOOKS: &str = "docs/runbooks.md";
const RUNBOOKS_URL: &str = "https://github.com/lifeboat-dr/lifeboat/blob/main/docs/runbooks.md";
const EXAMPLE_RULES: &str = "examples/prometheus/ferretdb-rules.yaml";
const EXAMPLE_PLAN: &str = "examples/ferretdb-failover.yaml";
const EXAMPLE_ALERTMANAGER: &str = "examples/alertmanager/alertmanager.yml";
const RULE_TESTS: &str = "testing/monitoring";
const SERVICE: &str = "deploy/controller/service.yaml";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn read(relative: &str) -> String {
    let path = repo_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A YAML file (one document) as JSON values.
fn yaml_at(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(relative: &str) -> Value {
    yaml_at(&repo_path(relative))
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The alerting rules of a rule file (`groups[].rules[]` with an `alert`).
fn alerts(rule_file: &Value) -> Vec<&Value> {
    let groups = rule_file["groups"].as_array().expect("groups: a list");
    let alerts: Vec<&Value> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules: a list"))
        .filter(|r| r.get("alert").is_some())
        .collect();
    assert!(!alerts.is_empty(), "no alerting rule in {rule_file}");
    alerts
}

fn alert_name(rule: &Value) -> &str {
    rule["alert"].as_str().expect("alert: a string")
}

/// The metric families of the exposition `text` (its `# TYPE` lines), each with the names
/// of the series that follow it: a counter `x` is exposed as `x_total` (OpenMetrics), a
/// histogram as `x_bucket`, `x_sum` and `x_count`, a gauge as `x`.
fn exported_families(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut families: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, _kind) = rest.split_once(' ').expect("# TYPE name type");
            families.entry(name.to_string()).or_default();
            current = Some(name.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            let series = line.split(['{', ' ']).next().unwrap_or_default();
            let family = current.as_ref().expect("a sample after its # TYPE line");
            assert!(
                series.starts_with(family.as_str()),
                "{series} follows # TYPE {family}"
            );
            families.get_mut(family).unwrap().insert(series.to_string());
        }
    }
    families
}

/// The metric names a PromQL expression names (identifiers starting with `lifeboat_`),
/// quoted strings (label values, regular expressions) left out. A hand-written scan: the
/// identifiers of PromQL are one character class, and no PromQL parser is a dependency.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let mut outside_strings = String::new();
    let mut quote = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
                outside_strings.push(' ');
            }
            None if matches!(c, '"' | '\'' | '`') => {
                quote = Some(c);
                outside_strings.push(' ');
            }
            None => outside_strings.push(c),
        }
    }
    outside_strings
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| token.starts_with("lifeboat_"))
        .map(str::to_string)
        .collect()
}

/// Every query of the dashboard, with the title of the panel (or variable) it belongs to:
/// the panels' `expr`, and the query of each templating variable.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(v: &Value, context: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) => {
                let context = map
                    .get("title")
                    .and_then(Value::as_str)
                    .map_or(context.to_string(), |t| format!("panel {t:?}"));
                if let Some(expr) = map.get("expr").and_then(Value::as_str) {
                    out.push((context.clone(), expr.to_string()));
                }
                for child in map.values() {
                    walk(child, &context, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, context, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], "", &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
    {
        let name = var["name"].as_str().expect("variable name");
        let query = match &var["query"] {
            Value::String(q) => q.clone(),
            Value::Object(q) => q["query"].as_str().unwrap_or_default().to_string(),
            _ => String::new(),
        };
        out.push((format!("variable ${name}"), query));
    }
    out
}

/// An Alertmanager notification of one firing alert per `kinds` (labels `kind: <kind>`).
fn notification(kinds: &[&str]) -> Value {
    let alerts: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            json!({"status": "firing", "labels": {"alertname": "AppDown", "kind": kind},
                "annotations": {}, "startsAt": "2024-05-01T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z", "fingerprint": format!("f-{kind}")})
        })
        .collect();
    json!({"version": "4", "receiver": "pager", "status": "firing",
        "groupKey": "{}:{alertname=\"AppDown\"}", "truncatedAlerts": 0, "groupLabels": {},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example",
        "alerts": alerts})
}

/// Scrapes `ctl` until `done` holds for the text, which it returns.
async fn scrape_until(ctl: &Controller, what: &str, done: impl Fn(&str) -> bool) -> String {
    eventually(&format!("{what} in /metrics"), || async {
        let text = ctl.metrics().await;
        done(&text).then_some(text)
    })
    .await
}

/// /metrics of a controller that has had a sample of everything it counts (a family with
/// none is left out of /metrics): alerts through the webhook, a completed run that sent a
/// notification and a failed run, then a webhook request and a plan status write that the
/// API server refuses.
async fn exercised_controller_metrics() -> String {
    // The notification's receiver: answers 200.
    let app = Router::new().route("/hook", post(|| async { StatusCode::OK }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let cluster = Cluster::start("local").await;
    cluster.sim.apply_object(seed_pod()).unwrap();
    cluster
        .create(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "hook", "namespace": "default"},
            "stringData": {"url": format!("http://{hook}/hook")}}))
        .await;
    let steps = |last: Value| {
        let mut steps = scenarios::pod_steps().as_array().unwrap().clone();
        steps.push(last);
        Value::Array(steps)
    };
    let notify = json!({"type": "notify", "notify": {
        "webhook": {"urlFrom": {"name": "hook", "key": "url"}},
        "body": {"text": "{{ .Run.Name }}"}}});
    let failing_job = json!({"type": "job", "job": {"template": {
        "metadata": {"annotations": {"sim.lifeboat.dev/outcome": "Fail",
            "sim.lifeboat.dev/duration": "50ms"}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}});
    for (name, last) in [("good", notify), ("bad", failing_job)] {
        cluster
            .create(scenarios::plan(name, json!({"kind": name}), steps(last)))
            .await;
    }
    let ctl = replica(
        &cluster,
        0,
        &["--alert-namespace", "default", "--no-leader-election"],
    )
    .await;
    for name in ["good", "bad"] {
        wait_plan_validated(&cluster.client, "default", name, &|| ctl.diag()).await;
    }
    let http = reqwest::Client::new();
    let post = |kinds: &[&str]| {
        http.post(ctl.webhook_url("/webhook"))
            .json(&notification(kinds))
            .send()
    };
    let resp = post(&["good", "bad"]).await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    scrape_until(
        &ctl,
        "a completed and a failed run, and a notification",
        |m| {
            metric_value(m, r#"lifeboat_runs_total{outcome="Completed"}"#) == Some(1.0)
                && metric_value(m, r#"lifeboat_runs_total{outcome="Failed"}"#) == Some(1.0)
                && metric_value(m, r#"lifeboat_notifications_total{outcome="Delivered"}"#)
                    == Some(1.0)
        },
    )
    .await;

    // The API server refuses every request: the webhook cannot store an alert (5xx), and
    // the plans controller cannot write the status of a new plan.
    cluster.sim.faults().set_error_rate(None, 1.0);
    let resp = post(&["refused"]).await.unwrap();
    assert!(resp.status().is_server_error(), "{}", resp.status());
    cluster
        .sim
        .apply_object(json!({"apiVersion": "recovery.elotl.co/v1alpha1",
            "kind": "RecoveryPlan", "metadata": {"name": "late", "namespace": "default"},
            "spec": {"alertLabels": {"kind": "late"}, "steps": scenarios::pod_steps()}}))
        .unwrap();
    let text = scrape_until(&ctl, "API and reconcile errors", |m| {
        m.contains("# TYPE lifeboat_api_errors ") && m.contains("# TYPE lifeboat_reconcile_errors ")
    })
    .await;
    cluster.sim.faults().clear();
    ctl.assert_no_panic();
    ctl.terminate().await;
    text
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_query_is_exported_and_every_metric_has_a_panel() {
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard JSON");
    let dashboard_queries = dashboard_queries(&dashboard);
    let rules = yaml(RULES);
    let mut queries: Vec<(String, String)> = alerts(&rules)
        .into_iter()
        .map(|r| {
            (
                format!("{RULES} alert {}", alert_name(r)),
                r["expr"].as_str().expect("expr").to_string(),
            )
        })
        .collect();
    queries.extend(
        dashboard_queries
            .iter()
            .map(|(what, q)| (format!("{DASHBOARD} {what}"), q.clone())),
    );

    let text = exercised_controller_metrics().await;
    let families = exported_families(&text);
    assert!(
        families.contains_key("lifeboat_build_info"),
        "the controller's metric families: {families:?}\n{text}"
    );
    let exported: BTreeSet<&String> = families.values().flatten().collect();

    let mut unknown = Vec::new();
    for (what, query) in &queries {
        for metric in metrics_in(query) {
            if !exported.contains(&metric) {
                unknown.push(format!("{what}: {metric} is not exported (query: {query})"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "queries name metrics the controller does not export:\n{}\nexported series: {exported:?}",
        unknown.join("\n")
    );

    // Every lifeboat family of /metrics is on the dashboard, under one of its series names.
    let on_dashboard: BTreeSet<String> = dashboard_queries
        .iter()
        .flat_map(|(_, q)| metrics_in(q))
        .collect();
    let missing: Vec<&String> = families
        .iter()
        .filter(|(family, series)| {
            family.starts_with("lifeboat_") && series.is_disjoint(&on_dashboard)
        })
        .map(|(family, _)| family)
        .collect();
    assert!(
        missing.is_empty(),
        "metrics without a dashboard panel: {missing:?}; the dashboard queries {on_dashboard:?}"
    );
}

#[test]
fn every_alert_has_a_severity_a_summary_a_description_and_a_runbook_section() {
    let runbooks = read(RUNBOOKS);
    let sections: BTreeSet<&str> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    let rules = yaml(RULES);
    let mut documented = BTreeSet::new();
    for rule in alerts(&rules) {
        let name = alert_name(rule);
        let severity = str_at(rule, "/labels/severity");
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name}: severity {severity:?} is not critical, warning or info"
        );
        for annotation in ["summary", "description"] {
            assert!(
                str_at(rule, &format!("/annotations/{annotation}"))
                    .is_some_and(|s| !s.trim().is_empty()),
                "{name} has no {annotation}"
            );
        }
        // GitHub's anchor of the heading `## Name` is `#name`.
        let runbook = str_at(rule, "/annotations/runbook_url");
        let expected = format!("{RUNBOOKS_URL}#{}", name.to_lowercase());
        assert_eq!(runbook, Some(expected.as_str()), "{name}: runbook_url");
        assert!(
            sections.contains(name),
            "{RUNBOOKS} has no section `## {name}`"
        );
        documented.insert(name);
    }
    let stale: Vec<&&str> = sections.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "{RUNBOOKS} sections of no alert: {stale:?}"
    );
}

#[test]
fn every_alert_has_a_unit_test_that_fires_it_and_one_where_it_stays_quiet() {
    // (rule file, alert) -> (tests in which it fires, tests in which it must not).
    let mut cases: BTreeMap<(PathBuf, String), (usize, usize)> = BTreeMap::new();
    let dir = repo_path(RULE_TESTS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.test.yaml in {}", dir.display());
    for file in &files {
        let tests = yaml_at(file);
        let rule_files: Vec<PathBuf> = tests["rule_files"]
            .as_array()
            .expect("rule_files")
            .iter()
            .map(|f| {
                let path = file.parent().unwrap().join(f.as_str().unwrap());
                path.canonicalize()
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", file.display(), path.display()))
            })
            .collect();
        for case in tests["tests"]
            .as_array()
            .expect("tests")
            .iter()
            .flat_map(|t| t["alert_rule_test"].as_array().cloned().unwrap_or_default())
        {
            let alert = case["alertname"].as_str().expect("alertname").to_string();
            let fires = case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
            for rule_file in &rule_files {
                let counts = cases.entry((rule_file.clone(), alert.clone())).or_default();
                if fires {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
        }
    }
    let mut untested = Vec::new();
    for rule_file in [RULES, EXAMPLE_RULES] {
        let path = repo_path(rule_file).canonicalize().unwrap();
        for rule in alerts(&yaml_at(&path)) {
            let name = alert_name(rule);
            let (fires, quiet) = cases
                .get(&(path.clone(), name.to_string()))
                .copied()
                .unwrap_or_default();
            if fires == 0 || quiet == 0 {
                untested.push(format!(
                    "{rule_file} {name}: {fires} test(s) firing it, {quiet} keeping it quiet"
                ));
            }
        }
    }
    assert!(
        untested.is_empty(),
        "alerts without both a firing and a quiet unit test in {RULE_TESTS}:\n{}",
        untested.join("\n")
    );
}

/// `name = "value"` (or `name="value"`) matchers of an Alertmanager route.
fn equality_matchers(route: &Value) -> BTreeMap<String, String> {
    route["matchers"]
        .as_array()
        .expect("matchers")
        .iter()
        .map(|m| {
            let m = m.as_str().expect("a matcher string");
            let (name, value) = m
                .split_once('=')
                .filter(|(name, value)| !name.ends_with('!') && !value.starts_with('~'))
                .unwrap_or_else(|| panic!("not an equality matcher: {m}"));
            (
                name.trim().to_string(),
                value.trim().trim_matches('"').to_string(),
            )
        })
        .collect()
}

#[test]
fn the_ferretdb_alert_carries_the_plan_s_labels_and_alertmanager_sends_it_to_lifeboat() {
    let plan = yaml(EXAMPLE_PLAN);
    assert_eq!(plan["kind"], "RecoveryPlan", "{EXAMPLE_PLAN}");
    let wanted: BTreeMap<String, String> =
        serde_json::from_value(plan["spec"]["alertLabels"].clone()).expect("alertLabels");
    assert!(!wanted.is_empty(), "{EXAMPLE_PLAN} matches no label");

    // The rule's alert, with its alertname, has every label the plan matches.
    let rules = yaml(EXAMPLE_RULES);
    let rule = alerts(&rules)
        .into_iter()
        .find(|r| Some(alert_name(r)) == wanted.get("alertname").map(String::as_str))
        .unwrap_or_else(|| panic!("{EXAMPLE_RULES} has no alert {:?}", wanted["alertname"]));
    let mut labels: BTreeMap<String, String> =
        serde_json::from_value(rule["labels"].clone()).expect("labels");
    labels.insert("alertname".into(), alert_name(rule).to_string());
    for (k, v) in &wanted {
        assert_eq!(
            labels.get(k),
            Some(v),
            "{EXAMPLE_RULES}: the alert's label {k} (the plan matches {wanted:?})"
        );
    }

    // Alertmanager routes exactly the plan's labels to the receiver `lifeboat`, and that
    // receiver posts to lifeboat's Service on its webhook port, with a bearer token read
    // from a file, resolved alerts included.
    let am = yaml(EXAMPLE_ALERTMANAGER);
    let routes = am["route"]["routes"].as_array().expect("route.routes");
    let route = routes
        .iter()
        .find(|r| r["receiver"] == "lifeboat")
        .expect("a route to the receiver lifeboat");
    assert_eq!(equality_matchers(route), wanted, "the route's matchers");
    let receiver = am["receivers"]
        .as_array()
        .expect("receivers")
        .iter()
        .find(|r| r["name"] == "lifeboat")
        .expect("the receiver lifeboat");
    let webhook = &receiver["webhook_configs"][0];
    let service = yaml(SERVICE);
    let port = service["spec"]["ports"]
        .as_array()
        .expect("Service ports")
        .iter()
        .find(|p| p["name"] == "webhook")
        .expect("the Service's port webhook")["port"]
        .as_u64()
        .unwrap();
    let url = format!(
        "http://{}.{}:{port}/webhook",
        service["metadata"]["name"].as_str().unwrap(),
        service["metadata"]["namespace"].as_str().unwrap()
    );
    assert_eq!(webhook["url"].as_str(), Some(url.as_str()), "webhook url");
    assert_eq!(webhook["send_resolved"], true, "send_resolved");
    assert_eq!(
        str_at(webhook, "/http_config/authorization/type"),
        Some("Bearer")
    );
    assert!(
        str_at(webhook, "/http_config/authorization/credentials_file").is_some(),
        "the token comes from a file: {webhook}"
    );
}
