#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what it needs first (Debian's
# prometheus-alertmanager for the real-Alertmanager test, cargo-nextest).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Installing test dependencies"
bash scripts/install-test-deps.sh

step "Formatting"
cargo fmt --all -- --check

step "Lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Deploy manifests render"
kubectl kustomize deploy >/dev/null

step "Tests"
cargo nextest run --workspace --locked --no-fail-fast --profile "${NEXTEST_PROFILE:-ci}"

step "Doc tests"
cargo test --workspace --doc --locked

step "Benchmark harness, quick mode (fails only on correctness checks; timings of a debug build mean nothing)"
cargo build --locked -p lifeboat -p lifeboat-bench
target/debug/lifeboat-bench --quick
