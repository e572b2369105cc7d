//! The shipped example plans (`examples/*.yaml`), end to end through the real `lifeboat
//! controller`, on the backend `LIFEBOAT_TEST_CLUSTER` chooses: each plan exactly as
//! shipped, the clusters it names registered, the objects it expects in them (fixtures
//! under `fixtures/examples/`), its alert sent as Alertmanager sends it, and the outcome
//! asserted on the clusters' objects and on the run. Where a step waits for what an
//! operator would write (a Deployment's ready replicas, external-dns's observed
//! generation), the test plays that operator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::{WatchStreamExt, watcher};
use lifeboat_api::{RecoveryPlan, RecoveryRun, RecoveryRunStatus, RunPhase, StepPhase};
use lifeboat_testkit::scenarios::{self, register_cluster, register_unreachable_cluster};
use lifeboat_testkit::wait::{eventually, wait_for_state, wait_run_finished};
use lifeboat_testkit::{Backend, ControllerProcess, LIFEBOAT_NS, TestCluster};
use serde::Deserialize;
use serde_json::{Value, json};

mod common;
#[path = "common/webhook_harness.rs"]
mod webhook;

const CNPG_PLAN: &str = include_str!("../../../examples/cloudnativepg-replica-promotion.yaml");
const MOVE_PLAN: &str = include_str!("../../../examples/workload-move-to-surviving-cluster.yaml");
const DNS_PLAN: &str = include_str!("../../../examples/service-switch.yaml");
const CNPG_CRD: &str = include_str!("../../../examples/crds/clusters.postgresql.cnpg.io.yaml");
const DNS_CRD: &str = include_str!("../../../examples/crds/dnsendpoints.externaldns.k8s.io.yaml");

const CNPG_EU_SOUTH: &str = include_str!("fixtures/examples/cnpg-eu-south.yaml");
const CNPG_EU_CENTRAL: &str = include_str!("fixtures/examples/cnpg-eu-central.yaml");
const SHOP_US_EAST: &str = include_str!("fixtures/examples/shop-us-east.yaml");
const SHOP_EU_WEST: &str = include_str!("fixtures/examples/shop-eu-west.yaml");
const DNS_MGMT: &str = include_str!("fixtures/examples/dns-mgmt.yaml");

/// The management cluster (lifeboat, its plans and alerts), the clusters the plans name,
/// and the controller.
struct World {
    home: TestCluster,
    clusters: BTreeMap<&'static str, TestCluster>,
    ctl: ControllerProcess,
}

impl World {
    /// Starts `mgmt` and one cluster per name (seeded with its fixture), registers them with
    /// lifeboat under their names — those in `unreachable` pointed at a port nothing
    /// listens on, as a region that is down — and starts the controller with its webhook.
    async fn start(clusters: &[(&'static str, &[&str], &str)], unreachable: &[&str]) -> World {
        let home = TestCluster::start("mgmt").await;
        let mut started = BTreeMap::new();
        for (name, crds, fixture) in clusters {
            let cluster = TestCluster::start(name).await;
            for crd in *crds {
                install_crd(&cluster, crd).await;
            }
            seed(&cluster, fixture).await;
            if unreachable.contains(name) {
                register_unreachable_cluster(&home.client(), name, &cluster).await;
            } else {
                register_cluster(&home.client(), name, &cluster).await;
            }
            started.insert(*name, cluster);
        }
        let ctl = common::replica(&home, 0, &["--no-leader-election"]).await;
        World {
            home,
            clusters: started,
            ctl,
        }
    }

    fn cluster(&self, name: &str) -> &TestCluster {
        &self.clusters[name]
    }

    fn diag(&self) -> String {
        self.ctl.diag()
    }

    /// Applies a shipped plan and waits until the controller has found it valid (the
    /// clusters it names are registered by then, or it says which are not).
    async fn apply_plan(&self, yaml: &str) -> String {
        let plan = lifeboat_testkit::yaml(yaml);
        let name = plan["metadata"]["name"].as_str().unwrap().to_string();
        assert_eq!(plan["metadata"]["namespace"], LIFEBOAT_NS);
        self.home.apply(plan).await;
        let api: Api<RecoveryPlan> = Api::namespaced(self.home.client(), LIFEBOAT_NS);
        wait_for_state(
            api,
            &name,
            "plan not Valid",
            |p: Option<&RecoveryPlan>| {
                p.and_then(|p| p.status.as_ref())
                    .is_some_and(|s| s.validation.as_deref() == Some("Valid"))
            },
            &|| self.diag(),
        )
        .await;
        name
    }

    /// Sends a firing alert with `labels` to the webhook, as Alertmanager does.
    async fn fire(&self, labels: &[(&str, &str)]) {
        let alert = webhook::am_alert("firing", labels, "2026-03-02T03:12:00Z", None);
        let (status, body) = webhook::post(
            &reqwest::Client::new(),
            &self.ctl.webhook_url("/webhook"),
            None,
            &webhook::am_payload("alertmanager", vec![alert]),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    /// The run `plan` started for the alert.
    async fn run_of(&self, plan: &str) -> String {
        let api: Api<RecoveryRun> = Api::namespaced(self.home.client(), LIFEBOAT_NS);
        eventually(&format!("a run of {plan}"), || async {
            api.list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|r| r.spec.plan_name.as_deref() == Some(plan))
                .and_then(|r| r.metadata.name)
        })
        .await
    }

    /// The run's status once it has finished.
    async fn finished(&self, run: &str) -> RecoveryRunStatus {
        wait_run_finished(&self.home.client(), LIFEBOAT_NS, run, &|| self.diag())
            .await
            .status
            .unwrap()
    }

    /// Waits until `run` is in `phase` and returns its status.
    async fn in_phase(&self, run: &str, phase: RunPhase) -> RecoveryRunStatus {
        let api = Api::namespaced(self.home.client(), LIFEBOAT_NS);
        let run = wait_for_state(
            api,
            run,
            &format!("run not {}", phase.as_str()),
            |r: Option<&RecoveryRun>| {
                r.and_then(|r| r.status.as_ref())
                    .is_some_and(|s| s.phase == phase)
            },
            &|| self.diag(),
        )
        .await;
        run.status.unwrap()
    }

    /// `lifeboat ARGS…` against the management cluster, as on-call would run it.
    async fn lifeboat(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"))
            .args(args)
            .env("KUBECONFIG", self.home.kubeconfig())
            .output()
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "lifeboat {args:?}: {text}");
        text
    }

    async fn stop(self) {
        self.ctl.assert_no_panic();
        self.ctl.terminate().await;
    }
}

/// Creates a CRD and waits until the server serves it.
async fn install_crd(cluster: &TestCluster, yaml: &str) {
    let crd = lifeboat_testkit::yaml(yaml);
    let name = crd["metadata"]["name"].as_str().unwrap().to_string();
    cluster.apply(crd).await;
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client());
    wait_for_state(
        api,
        &name,
        "CRD not established",
        |c: Option<&CustomResourceDefinition>| {
            c.and_then(|c| c.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        },
        &|| cluster.server_log(),
    )
    .await;
}

/// The API resource of `obj`: the plural of every kind the fixtures hold is its lowercased
/// kind with an `s`.
fn resource_of(obj: &Value) -> ApiResource {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        &format!("{}s", kind.to_ascii_lowercase()),
    )
}

/// Creates the objects of a fixture (a multi-document YAML) in `cluster`, then writes the
/// status each one has there, as its controller would have.
async fn seed(cluster: &TestCluster, yaml: &str) {
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let obj = Value::deserialize(doc).unwrap();
        if obj["kind"] == "Namespace" {
            cluster
                .create_namespaces(&[obj["metadata"]["name"].as_str().unwrap()])
                .await;
            continue;
        }
        let ns = obj["metadata"]["namespace"].as_str().unwrap().to_string();
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        let status = obj.get("status").cloned();
        scenarios::create(&cluster.client(), obj.clone(), &ns).await;
        if let Some(status) = status {
            set_status(cluster, &resource_of(&obj), &ns, &name, status).await;
        }
    }
}

async fn set_status(cluster: &TestCluster, ar: &ApiResource, ns: &str, name: &str, status: Value) {
    Api::<DynamicObject>::namespaced_with(cluster.client(), ns, ar)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .unwrap_or_else(|e| panic!("status of {} {ns}/{name}: {e}", ar.plural));
}

/// The object as stored.
async fn get(
    cluster: &TestCluster,
    api_version: &str,
    plural: &str,
    ns: &str,
    name: &str,
) -> Value {
    cluster
        .get(api_version, plural, Some(ns), name)
        .await
        .unwrap_or_else(|| panic!("{plural} {ns}/{name} not found in {}", cluster.name()))
}

/// A controller the test plays: it watches one object and writes the status `react`
/// returns for it (none: nothing to do). Stops when dropped.
struct Playing(tokio::task::JoinHandle<()>);

impl Drop for Playing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn play(
    cluster: &TestCluster,
    ar: ApiResource,
    ns: &str,
    name: &str,
    react: fn(&Value) -> Option<Value>,
) -> Playing {
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), ns, &ar);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let name = name.to_string();
    Playing(tokio::spawn(async move {
        let mut changes = std::pin::pin!(
            watcher(api.clone(), config)
                .default_backoff()
                .applied_objects()
        );
        while let Some(change) = changes.next().await {
            let Ok(obj) = change else { continue };
            let Some(status) = react(&serde_json::to_value(&obj).unwrap()) else {
                continue;
            };
            // A conflict or a lost request is retried with the next change the watch sees.
            let _ = api
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "status": status })),
                )
                .await;
        }
    }))
}

/// The Deployment controller and the kubelets: every replica asked for becomes ready.
fn deployment_controller(d: &Value) -> Option<Value> {
    let want = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let ready = d["status"]["readyReplicas"].as_i64().unwrap_or(0);
    (ready != want).then(|| {
        json!({"observedGeneration": d["metadata"]["generation"], "replicas": want,
               "updatedReplicas": want, "readyReplicas": want, "availableReplicas": want})
    })
}

/// external-dns's `crd` source: it records the generation it has read.
fn external_dns(e: &Value) -> Option<Value> {
    let generation = &e["metadata"]["generation"];
    (e["status"]["observedGeneration"] != *generation)
        .then(|| json!({ "observedGeneration": generation }))
}

fn deployments() -> ApiResource {
    resource_of(&json!({"apiVersion": "apps/v1", "kind": "Deployment"}))
}

/// The steps' phases, in order.
fn phases(rs: &RecoveryRunStatus) -> Vec<StepPhase> {
    rs.steps.iter().map(|s| s.phase).collect()
}

/// The targets of `dns_name` in the DNSEndpoint `external-dns/shop`.
async fn dns_targets(home: &TestCluster, dns_name: &str) -> Value {
    let e = get(
        home,
        "externaldns.k8s.io/v1alpha1",
        "dnsendpoints",
        "external-dns",
        "shop",
    )
    .await;
    e["spec"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ep| ep["dnsName"] == dns_name)
        .map(|ep| ep["targets"].clone())
        .unwrap_or_else(|| panic!("no record for {dns_name}: {e}"))
}

/// The region of the primary is lost: pg-eu-central is promoted, the payments API is
/// pointed at it, and the run stops Failed at fencing pg-eu-south, which cannot be reached.
/// When eu-south answers again, `lifeboat runs retry` fences it and the run completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudnativepg_replica_is_promoted_and_the_lost_primary_fenced_when_back() {
    let w = World::start(
        &[
            ("eu-south", &[CNPG_CRD], CNPG_EU_SOUTH),
            ("eu-central", &[CNPG_CRD], CNPG_EU_CENTRAL),
        ],
        &["eu-south"],
    )
    .await;
    let plan = w.apply_plan(CNPG_PLAN).await;
    w.fire(&[
        ("alertname", "PostgresPrimaryRegionDown"),
        ("service", "payments"),
        ("severity", "critical"),
    ])
    .await;
    let run = w.run_of(&plan).await;
    let rs = w.finished(&run).await;

    use StepPhase::{Failed, Succeeded};
    assert_eq!(rs.phase, RunPhase::Failed, "{rs:#?}");
    assert_eq!(
        phases(&rs),
        [
            Succeeded, Succeeded, Succeeded, Succeeded, Succeeded, Failed
        ],
        "everything but fencing the unreachable primary: {rs:#?}"
    );
    let check = &rs.steps[0].evidence;
    assert!(
        check.iter().all(|e| e.passed),
        "the evidence holds: {check:#?}"
    );
    let fence = rs.steps[5].message.clone().unwrap_or_default();
    assert!(
        fence.contains("cluster \"eu-south\" is unreachable"),
        "the failure says which cluster cannot be reached: {fence}"
    );
    assert_eq!(
        rs.steps[5].attempts, 3,
        "tried, then retried twice: {rs:#?}"
    );

    let eu_central = w.cluster("eu-central");
    let replica = get(
        eu_central,
        "postgresql.cnpg.io/v1",
        "clusters",
        "payments",
        "pg-eu-central",
    )
    .await;
    assert_eq!(
        replica["spec"]["replica"]["primary"], "pg-eu-central",
        "pg-eu-central is promoted"
    );
    assert_eq!(
        replica["spec"]["replica"]["source"], "pg-eu-south",
        "the rest of its replica stanza is kept"
    );
    let job = rs.steps[2]
        .job_name
        .clone()
        .expect("the step names its Job");
    let job = get(eu_central, "batch/v1", "jobs", "payments", &job).await;
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "pg-eu-central-rw",
        "the Job asked the new primary whether it accepts writes"
    );
    assert_eq!(rs.values["writeService"], "pg-eu-central-rw");
    let service = get(eu_central, "v1", "services", "payments", "payments-db").await;
    assert_eq!(
        service["spec"]["externalName"], "pg-eu-central-rw.payments.svc.cluster.local",
        "the payments API reaches the new primary"
    );

    // eu-south answers again: its Secret points at its API server, and on-call resumes
    // the run at the step that failed.
    let eu_south = w.cluster("eu-south");
    let secret = scenarios::cluster_secret("eu-south", eu_south);
    Api::<Secret>::namespaced(w.home.client(), LIFEBOAT_NS)
        .patch(
            secret.metadata.name.as_deref().unwrap(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": secret.data })),
        )
        .await
        .unwrap();
    let said = w
        .lifeboat(&["runs", "retry", "-n", LIFEBOAT_NS, &run])
        .await;
    assert!(said.contains("from step 6"), "{said}");
    let rs = w.in_phase(&run, RunPhase::Completed).await;
    assert_eq!(rs.previous_attempts.len(), 1, "{rs:#?}");
    assert_eq!(rs.steps[1].attempts, 1, "the promotion is not repeated");
    let former = get(
        eu_south,
        "postgresql.cnpg.io/v1",
        "clusters",
        "payments",
        "pg-eu-south",
    )
    .await;
    assert_eq!(
        former["spec"]["replica"]["primary"], "pg-eu-central",
        "pg-eu-south is fenced: it follows the new primary"
    );
    w.stop().await;
}

/// The shop's clusters: us-east, degraded, and eu-west. On the real control plane
/// kube-controller-manager's Deployment controller and the node agent bring checkout's
/// replicas up; the simulator has neither, so there the test plays them for checkout.
async fn shop() -> (World, Option<Playing>) {
    let w = World::start(
        &[
            ("us-east", &[], SHOP_US_EAST),
            ("eu-west", &[], SHOP_EU_WEST),
        ],
        &[],
    )
    .await;
    let eu_west = w.cluster("eu-west");
    let playing = (eu_west.backend() == Backend::Sim).then(|| {
        play(
            eu_west,
            deployments(),
            "shop",
            "checkout",
            deployment_controller,
        )
    });
    (w, playing)
}

/// us-east is degraded but answers: once on-call approves, checkout runs 6 ready replicas
/// in eu-west and none in us-east.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_moves_to_the_surviving_cluster_once_approved() {
    let (w, _deployments) = shop().await;
    let eu_west = w.cluster("eu-west");
    let plan = w.apply_plan(MOVE_PLAN).await;
    w.fire(&[("alertname", "RegionUnavailable"), ("region", "us-east")])
        .await;
    let run = w.run_of(&plan).await;

    let rs = w.in_phase(&run, RunPhase::WaitingForApproval).await;
    assert!(rs.steps[0].evidence.iter().all(|e| e.passed), "{rs:#?}");
    let checkout = get(eu_west, "apps/v1", "deployments", "shop", "checkout").await;
    assert_eq!(
        checkout["spec"]["replicas"], 0,
        "nothing moves before the decision"
    );

    w.lifeboat(&[
        "approve",
        "-n",
        LIFEBOAT_NS,
        &run,
        "--reason",
        "us-east ingress is down",
    ])
    .await;
    let rs = w.finished(&run).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    assert_eq!(
        rs.steps[1].approvals[0].reason.as_deref(),
        Some("us-east ingress is down")
    );

    let checkout = get(eu_west, "apps/v1", "deployments", "shop", "checkout").await;
    assert_eq!(checkout["spec"]["replicas"], 6, "eu-west runs checkout");
    assert_eq!(
        checkout["status"]["readyReplicas"], 6,
        "and its replicas are ready"
    );
    let old = get(
        w.cluster("us-east"),
        "apps/v1",
        "deployments",
        "shop",
        "checkout",
    )
    .await;
    assert_eq!(
        old["spec"]["replicas"], 0,
        "us-east no longer serves checkout"
    );
    assert_eq!(
        old["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/shop/checkout:2.14.1",
        "only the replica count changed"
    );
    w.stop().await;
}

/// One alert, two plans: the DNS switch waits, polling, until the workload move has made
/// eu-west able to serve, then points shop.example.com at eu-west's ingress, leaves the
/// other records alone, and finishes once external-dns has taken the change in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_follows_the_surviving_region_once_it_can_serve() {
    let (w, _deployments) = shop().await;
    install_crd(&w.home, DNS_CRD).await;
    seed(&w.home, DNS_MGMT).await;
    let dns =
        resource_of(&json!({"apiVersion": "externaldns.k8s.io/v1alpha1", "kind": "DNSEndpoint"}));
    let _external_dns = play(&w.home, dns, "external-dns", "shop", external_dns);
    let switch = w.apply_plan(DNS_PLAN).await;
    let moving = w.apply_plan(MOVE_PLAN).await;
    w.fire(&[("alertname", "RegionUnavailable"), ("region", "us-east")])
        .await;
    let switch_run = w.run_of(&switch).await;
    let move_run = w.run_of(&moving).await;

    w.in_phase(&move_run, RunPhase::WaitingForApproval).await;
    assert_eq!(
        dns_targets(&w.home, "shop.example.com").await,
        json!(["203.0.113.10"]),
        "no switch while eu-west has no capacity"
    );
    w.lifeboat(&["approve", "-n", LIFEBOAT_NS, &move_run]).await;
    let moved = w.finished(&move_run).await;
    assert_eq!(moved.phase, RunPhase::Completed, "{moved:#?}");

    let rs = w.finished(&switch_run).await;
    assert_eq!(rs.phase, RunPhase::Completed, "{rs:#?}");
    let capacity = rs.steps[0]
        .evidence
        .iter()
        .find(|e| e.assertion.contains("checkout"))
        .unwrap();
    assert_eq!(
        (capacity.passed, capacity.observed.as_str()),
        (true, "6"),
        "{rs:#?}"
    );
    assert_eq!(rs.values["ingressAddress"], "198.51.100.20");
    assert_eq!(
        dns_targets(&w.home, "shop.example.com").await,
        json!(["198.51.100.20"]),
        "shop.example.com names eu-west's ingress"
    );
    assert_eq!(
        dns_targets(&w.home, "status.example.com").await,
        json!(["192.0.2.50"]),
        "the other records are untouched"
    );
    let e = get(
        &w.home,
        "externaldns.k8s.io/v1alpha1",
        "dnsendpoints",
        "external-dns",
        "shop",
    )
    .await;
    assert_eq!(
        e["status"]["observedGeneration"],
        e["metadata"]["generation"]
    );
    assert_eq!(rs.values["dnsGeneration"], e["metadata"]["generation"]);
    w.stop().await;
}
