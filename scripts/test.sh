#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first (Debian's
# prometheus-alertmanager for the real-Alertmanager test, prometheus for promtool,
# cargo-nextest), builds the real Kubernetes control plane (testing/kube, from Kubernetes'
# Go modules; several minutes cold, about a second once Go's build cache has it), checks
# the monitoring assets, builds the install tools (helm, crane) and checks the Helm chart
# against the kustomize base, then runs the suite on the simulator and the cluster tests
# again on the real control plane (the chart installed there too), and builds and checks
# the container image.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Installing test dependencies"
bash scripts/install-test-deps.sh

step "Formatting"
cargo fmt --all -- --check

step "Lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Go: formatting and vet of the control plane (testing/kube) and the install tools (testing/tools)"
unformatted="$(cd testing/kube && gofmt -l .)"
if [ -n "$unformatted" ]; then
    echo "gofmt would change: $unformatted" >&2
    exit 1
fi
(cd testing/kube && go vet ./...)
unformatted="$(cd testing/tools && gofmt -l .)"
if [ -n "$unformatted" ]; then
    echo "gofmt would change: $unformatted" >&2
    exit 1
fi
(cd testing/tools && go vet ./...)

step "Building the real control plane (Kubernetes $(sed -n 's/^\tk8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' testing/kube/go.mod))"
time bash scripts/build-kube.sh

step "Building the install tools (helm, crane, manifests)"
time bash scripts/build-tools.sh

step "Deploy manifests render"
kubectl kustomize deploy >/dev/null

step "Helm chart: lint, template (defaults, every toggle on), versions, and the kustomize base compared with it"
bash scripts/check-chart.sh

step "Monitoring: alerting rules (promtool check and unit tests), Alertmanager and Prometheus examples, Grafana dashboard"
bash scripts/check-monitoring.sh

step "Tests on the simulator"
cargo nextest run --workspace --locked --no-fail-fast --profile "${NEXTEST_PROFILE:-ci}"

step "Tests on the real control plane (LIFEBOAT_TEST_CLUSTER=kube)"
LIFEBOAT_TEST_CLUSTER=kube cargo nextest run --workspace --locked --no-fail-fast \
    --profile "${NEXTEST_KUBE_PROFILE:-ci-kube}"

step "Doc tests"
cargo test --workspace --doc --locked

step "Container image: static release build, assembled without a Docker daemon, checked and run"
time bash scripts/build-image.sh
bash scripts/check-image.sh

step "Benchmark harness, quick mode (fails only on correctness checks; timings of a debug build mean nothing)"
cargo build --locked -p lifeboat -p lifeboat-bench
target/debug/lifeboat-bench --quick
