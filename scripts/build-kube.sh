#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by the tests (testing/kube) into
# target/kube/lifeboat-kube. Kubernetes' server code comes from its Go modules;
# Go's build cache makes a rebuild with nothing changed take about a second
# (a cold build takes several minutes on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/target/kube/lifeboat-kube"
mkdir -p "$(dirname "$out")"
# Stamp the release the modules come from, so /version (and kubectl version) report it.
version="$(sed -n 's/^\tk8s.io\/kubernetes \(v[0-9][0-9.]*\)$/\1/p' testing/kube/go.mod)"
minor="$(echo "$version" | cut -d. -f2)"
pkg=k8s.io/component-base/version
ldflags="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
# No VCS stamping: the build must not depend on how the tree was checked out.
(cd testing/kube && go build -buildvcs=false -ldflags "$ldflags" -o "$out" .)
echo "$out"
