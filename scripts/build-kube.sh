#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by the tests (testing/kube) into
# target/kube/lifeboat-kube. Kubernetes' server code comes from its Go modules;
# Go's build cache makes a rebuild with nothing changed take about a second
# (a cold build takes several minutes on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/target/kube/lifeboat-kube"
mkdir -p "$(dirname "$out")"
(cd testing/kube && go build -o "$out" .)
echo "$out"
