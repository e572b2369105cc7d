#!/usr/bin/env bash
# Checks the Helm chart (charts/lifeboat) and that it and the kustomize base (deploy/) install
# the same thing:
#  - `helm lint` and `helm lint --strict`, with the default values and with every toggle on
#    (charts/lifeboat/ci/all-on-values.yaml);
#  - `helm template` with both, every object decoded strictly into its Kubernetes type
#    (unknown or misspelt fields fail) and placed in a namespace when namespaced;
#  - the version: the chart's version and appVersion, the image tag in deploy/ and the tag
#    scripts/build-image.sh gives the image are the version of crates/cli/Cargo.toml;
#  - no drift: `kubectl kustomize deploy` and the chart rendered with its default values
#    (plus the namespace the base creates) are the same objects, CRDs included (the chart's
#    crds/ is a link to deploy/crds, which `lifeboat crds --out deploy/crds` writes).
#
# Why compare rather than generate deploy/ from the chart: the kustomize base stays plain,
# commented manifests that need no Helm to read, review or patch with overlays, and it
# carries no Helm bookkeeping labels; the comparison makes a change to one that is not made
# to the other fail here, naming the object and the field.
#
# Needs target/tools (scripts/build-tools.sh) and kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="$PWD/target/tools"
for tool in helm manifests; do
    if [ ! -x "$tools/$tool" ]; then
        echo "check-chart: $tools/$tool is missing; build it with scripts/build-tools.sh" >&2
        exit 1
    fi
done
chart=charts/lifeboat
all_on="$chart/ci/all-on-values.yaml"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# Helm reports following the crds link on every load; nothing else it says is dropped.
helm() { "$tools/helm" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }

version="$(cargo pkgid --quiet -p lifeboat | sed 's/.*[@#]//')"
echo "lifeboat version (crates/cli/Cargo.toml): $version"
fail=0
field() { sed -n "s/^$1: *\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$chart/Chart.yaml"; }
for key in version appVersion; do
    if [ "$(field "$key")" != "$version" ]; then
        echo "check-chart: $chart/Chart.yaml $key is $(field "$key"), not $version" >&2
        fail=1
    fi
done
deploy_image="$(kubectl kustomize deploy | sed -n 's/^ *image: *//p')"
if [ "$deploy_image" != "ghcr.io/lifeboat-dr/lifeboat:$version" ]; then
    echo "check-chart: deploy/ runs image '$deploy_image', not ghcr.io/lifeboat-dr/lifeboat:$version" >&2
    fail=1
fi
if [ "$(readlink "$chart/crds")" != "../../deploy/crds" ]; then
    echo "check-chart: $chart/crds must be a link to ../../deploy/crds" >&2
    fail=1
fi

echo "helm lint"
helm lint "$chart"
helm lint --strict "$chart"
helm lint --strict "$chart" -f "$all_on"

echo "helm template, default values and every toggle on"
helm template lifeboat "$chart" --namespace lifeboat-system >"$out/default.yaml"
"$tools/manifests" check "$out/default.yaml"
helm template lifeboat "$chart" --namespace default -f "$all_on" >"$out/all-on.yaml"
"$tools/manifests" check "$out/all-on.yaml"

echo "the kustomize base against the chart"
kubectl kustomize deploy >"$out/kustomize.yaml"
helm template lifeboat "$chart" --namespace default --include-crds \
    --set namespace.create=true --set namespace.name=lifeboat-system >"$out/chart.yaml"
if ! "$tools/manifests" compare "$out/kustomize.yaml" "$out/chart.yaml"; then
    echo "check-chart: deploy/ and $chart differ (above); change both" >&2
    fail=1
fi
exit "$fail"
