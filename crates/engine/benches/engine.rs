//! Engine benchmarks: matching one alert against 10 000 plans, rendering the seed template,
//! evaluating a field path with a filter, building a patch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lifeboat_api::{AlertSpec, PatchType};
use lifeboat_engine::fieldpath::FieldPath;
use lifeboat_engine::matching::PlanIndex;
use lifeboat_engine::patch::build_patch;
use lifeboat_engine::template::{Template, TemplateContext, render_leaves};
use serde_json::{Value, json};

fn labels(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn matching(c: &mut Criterion) {
    let mut index = PlanIndex::new();
    for i in 0..10_000 {
        let l = labels(&[
            ("alertname", format!("Alert{}", i % 2_000)),
            (
                "severity",
                if i % 3 == 0 { "critical" } else { "warning" }.to_string(),
            ),
            ("app", format!("app-{}", i % 500)),
            ("team", format!("team-{}", i % 20)),
        ]);
        index.upsert((format!("ns-{}", i % 50), format!("plan-{i}")), &l);
    }
    let alert = labels(&[
        ("alertname", "Alert42".to_string()),
        ("severity", "critical".to_string()),
        ("app", "app-42".to_string()),
        ("team", "team-2".to_string()),
        ("instance", "10.0.0.1:9090".to_string()),
        ("job", "node".to_string()),
    ]);
    assert!(
        !index.matches(&alert).is_empty(),
        "the benchmark alert must match something"
    );
    c.bench_function("match one alert against 10000 plans", |b| {
        b.iter(|| black_box(index.matches(black_box(&alert))))
    });
}

fn templates(c: &mut Criterion) {
    let values: BTreeMap<String, Value> = [("podImage".to_string(), json!("example-image:v1"))]
        .into_iter()
        .collect();
    let alert = AlertSpec {
        name: "critical-alert".into(),
        labels: labels(&[("severity", "critical".into()), ("app", "my-app".into())]),
        annotations: BTreeMap::new(),
    };
    let ctx = TemplateContext {
        values: &values,
        alert: &alert,
        run_name: "run",
        run_namespace: "default",
        run_phase: "Running",
        run_message: "",
    };
    let t = Template::parse("echo Updating to image {{ .Values.podImage }}").unwrap();
    c.bench_function("render seed template (parsed)", |b| {
        b.iter(|| black_box(t.render(black_box(&ctx)).unwrap()))
    });
    let job = json!({"spec": {"containers": [{"name": "update-notification", "image": "busybox",
        "command": ["sh", "-c", "echo Updating to image {{ .Values.podImage }}"]}], "restartPolicy": "OnFailure"}});
    c.bench_function("render seed job template leaves (parse + render)", |b| {
        b.iter(|| black_box(render_leaves(black_box(&job), &ctx).unwrap()))
    });
}

fn field_paths(c: &mut Criterion) {
    let doc = json!({"status": {"conditions": [
        {"type": "Initialized", "status": "True"},
        {"type": "PodScheduled", "status": "True"},
        {"type": "ContainersReady", "status": "True"},
        {"type": "Ready", "status": "True"}
    ]}});
    let path = FieldPath::parse("status.conditions[?(@.type==\"Ready\")].status").unwrap();
    c.bench_function("evaluate fieldPath with a filter", |b| {
        b.iter(|| black_box(path.get(black_box(&doc)).unwrap()))
    });
    c.bench_function("parse + evaluate fieldPath with a filter", |b| {
        b.iter(|| {
            let p = FieldPath::parse(black_box("status.conditions[?(@.type==\"Ready\")].status"))
                .unwrap();
            black_box(p.get(&doc).unwrap().clone())
        })
    });
    let pod = json!({"metadata": {"resourceVersion": "1"}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "app", "image": "y"}]}});
    let p = FieldPath::parse("spec.containers[?(@.name==\"app\")].image").unwrap();
    c.bench_function("build JSON patch with a filter", |b| {
        b.iter(|| {
            black_box(build_patch(PatchType::JsonPatch, &p, json!("z"), Some(&pod), "v1").unwrap())
        })
    });
}

criterion_group!(benches, matching, templates, field_paths);
criterion_main!(benches);
