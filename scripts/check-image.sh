#!/usr/bin/env bash
# Checks the image scripts/build-image.sh built (target/image):
#  - its config: linux/amd64, User 65532:65532, Entrypoint ["/lifeboat"], the OCI labels
#    with the version of crates/cli/Cargo.toml; the tarball is tagged
#    ghcr.io/lifeboat-dr/lifeboat:<version>;
#  - its one layer holds /lifeboat and nothing else (no shell, no libc), a static binary;
#  - it runs: `lifeboat --version` prints the version. In an OCI runtime where the machine
#    allows it (umoci unpacks the layout into a bundle whose config.json comes from the
#    image's config — user, entrypoint — and runc or crun runs it); where neither can run
#    a container here, the unpacked binary runs directly as 65532:65532. The output says which.
# Needs jq, umoci, runc (or crun) and readelf (scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

out="$PWD/target/image"
version="$(cargo pkgid --quiet -p lifeboat | sed 's/.*[@#]//')"
image="ghcr.io/lifeboat-dr/lifeboat:$version"
for tool in jq umoci readelf; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "check-image: $tool is missing (scripts/install-test-deps.sh installs it)" >&2
        exit 1
    fi
done
if [ ! -f "$out/oci/index.json" ] || [ ! -f "$out/lifeboat-$version.tar" ]; then
    echo "check-image: no image for $version in $out; build it with scripts/build-image.sh" >&2
    exit 1
fi

fail() {
    echo "check-image: $*" >&2
    exit 1
}
blob() { echo "$out/oci/blobs/${1/://}"; }

manifest="$(blob "$(jq -r --arg v "$version" \
    '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $v) | .digest' \
    "$out/oci/index.json")")"
[ -f "$manifest" ] || fail "the layout has no manifest tagged $version"
config="$(blob "$(jq -r .config.digest "$manifest")")"
echo "config: $(jq -c '{os, architecture, User: .config.User, Entrypoint: .config.Entrypoint, Cmd: .config.Cmd}' "$config")"
jq -e '.os == "linux" and .architecture == "amd64"' "$config" >/dev/null || fail "not linux/amd64"
jq -e '.config.User == "65532:65532"' "$config" >/dev/null || fail "User is not 65532:65532"
jq -e '.config.Entrypoint == ["/lifeboat"] and (.config.Cmd // []) == []' "$config" >/dev/null ||
    fail "Entrypoint is not [\"/lifeboat\"] alone"
for label in title description source licenses; do
    jq -e --arg l "org.opencontainers.image.$label" '.config.Labels[$l] | length > 0' "$config" >/dev/null ||
        fail "no label org.opencontainers.image.$label"
done
jq -e --arg v "$version" '.config.Labels["org.opencontainers.image.version"] == $v' "$config" >/dev/null ||
    fail "label org.opencontainers.image.version is not $version"
jq -e '.mediaType == "application/vnd.oci.image.manifest.v1+json" and (.layers | length) == 1' \
    "$manifest" >/dev/null || fail "not an OCI manifest with one layer"
layer="$(blob "$(jq -r '.layers[0].digest' "$manifest")")"
files="$(tar -tzf "$layer")"
[ "$files" = "lifeboat" ] || fail "the layer holds more than /lifeboat: $files"
tag="$(tar -xOf "$out/lifeboat-$version.tar" manifest.json | jq -r '.[0].RepoTags[0]')"
[ "$tag" = "$image" ] || fail "the tarball is tagged $tag, not $image"
echo "image: $image, one layer (/lifeboat), user 65532:65532, labels ok"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umoci unpack --image "$out/oci:$version" "$work/bundle" >/dev/null
binary="$work/bundle/rootfs/lifeboat"
if readelf -l "$binary" | grep -q 'INTERP'; then
    fail "/lifeboat is dynamically linked (it needs an interpreter the image does not have)"
fi
jq -e '.process.user.uid == 65532 and .process.user.gid == 65532 and .process.args == ["/lifeboat"]' \
    "$work/bundle/config.json" >/dev/null || fail "umoci's bundle does not run /lifeboat as 65532:65532"
# `lifeboat --version` in the bundle: the image's entrypoint and user, one more argument.
jq '.process.args += ["--version"] | .process.terminal = false' "$work/bundle/config.json" \
    >"$work/config.json"
mv "$work/config.json" "$work/bundle/config.json"

# The first OCI runtime that can run the container here; a runtime needs namespaces and
# cgroups that a sandboxed or unprivileged machine may not give (crun, for one, refuses
# hybrid cgroup v1/v2 hierarchies), and the binary from the image then runs directly, as
# the image's user.
how=""
tried=0
for runtime in runc crun; do
    command -v "$runtime" >/dev/null 2>&1 || continue
    tried=1
    container="lifeboat-check-$$-$runtime"
    if printed="$("$runtime" run --bundle "$work/bundle" "$container" 2>"$work/runtime.err")"; then
        how="in the OCI runtime $($runtime --version | head -n1), as the image's user"
        break
    fi
    echo "check-image: $runtime could not run the container here:" >&2
    sed 's/^/  /' "$work/runtime.err" >&2
    "$runtime" delete --force "$container" >/dev/null 2>&1 || true
done
[ "$tried" -eq 1 ] || fail "no OCI runtime (runc or crun) installed"
if [ -z "$how" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        printed="$(setpriv --reuid 65532 --regid 65532 --clear-groups "$binary" --version)"
        how="directly from the unpacked layer (no OCI runtime could run it), as 65532:65532"
    else
        printed="$("$binary" --version)"
        how="directly from the unpacked layer (no OCI runtime could run it), as $(id -u):$(id -g)"
    fi
fi
echo "ran /lifeboat --version $how: $printed"
case "$printed" in
*"$version"*) ;;
*) fail "lifeboat --version printed '$printed', not the version $version" ;;
esac
echo "check-image: ok"
