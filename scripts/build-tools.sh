#!/usr/bin/env bash
# Builds the tools the install checks use into target/tools/:
#  - helm (chart lint, template, install) and crane (daemonless image build), pinned by the
#    `tool` directives of testing/tools/go.mod;
#  - manifests (testing/tools/manifests): offline checks of rendered manifests, and the
#    comparison of the kustomize base with the chart.
# testing/tools is a module of its own, apart from testing/kube, so the two can follow
# different Kubernetes library versions. Go's build cache makes a rebuild with nothing
# changed take a second or two (a cold build takes about four minutes on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/target/tools"
mkdir -p "$out"
# `go build tool` builds every tool the module declares; -o into a directory names each
# binary after its package.
(cd testing/tools && go build -buildvcs=false -o "$out/" tool ./manifests)
ls "$out"
