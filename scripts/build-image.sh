#!/usr/bin/env bash
# Builds the lifeboat container image without a Docker daemon: the image the Dockerfile
# describes — the static (musl) release binary as /lifeboat on an empty base, its final
# stage's labels, user and entrypoint, OCI media types — assembled with crane through a
# registry crane serves in memory on a loopback port for the length of the build.
#
#   target/image/lifeboat-<version>.tar   `docker load` / `podman load` / `crane push`
#   target/image/oci/                     OCI image layout, tagged <version> (umoci, skopeo)
#
# The image is ghcr.io/lifeboat-dr/lifeboat:<version of crates/cli/Cargo.toml>, the tag
# deploy/ and the chart's appVersion name (scripts/check-chart.sh checks they agree).
# Needs target/tools/crane (scripts/build-tools.sh) and the Rust target
# x86_64-unknown-linux-musl (scripts/install-test-deps.sh adds it, with musl-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

crane="$PWD/target/tools/crane"
if [ ! -x "$crane" ]; then
    echo "build-image: $crane is missing; build it with scripts/build-tools.sh" >&2
    exit 1
fi
rust_target=x86_64-unknown-linux-musl
version="$(cargo pkgid --quiet -p lifeboat | sed 's/.*[@#]//')"
image="ghcr.io/lifeboat-dr/lifeboat:$version"
out="$PWD/target/image"

echo "build-image: cargo build --release -p lifeboat --target $rust_target"
cargo build --release --locked -p lifeboat --target "$rust_target"

rm -rf "$out"
mkdir -p "$out/rootfs"
# Stripped of its symbol table, as the Dockerfile installs it.
install -s -m 0755 "target/$rust_target/release/lifeboat" "$out/rootfs/lifeboat"
# One layer, byte for byte the same for the same binary: no owner names, times or order
# from this machine.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
    -C "$out/rootfs" -cf "$out/layer.tar" lifeboat

# The image's settings come from the Dockerfile's final stage, so both builds agree.
final_stage="$(sed -n '/^FROM scratch/,$p' Dockerfile)"
user="$(sed -n 's/^USER \(.*\)$/\1/p' <<<"$final_stage")"
entrypoint="$(sed -n 's/^ENTRYPOINT \["\(.*\)"\]$/\1/p' <<<"$final_stage")"
labels=()
while IFS= read -r label; do
    labels+=(--label "${label//\$\{VERSION\}/$version}")
done < <(sed -n 's/^.*\(org\.opencontainers\.image\.[a-z]*\)="\([^"]*\)".*$/\1=\2/p' <<<"$final_stage")
if [ -z "$user" ] || [ -z "$entrypoint" ] || [ "${#labels[@]}" -eq 0 ]; then
    echo "build-image: no USER, ENTRYPOINT or LABEL in the Dockerfile's final stage" >&2
    exit 1
fi

registry_log="$out/registry.log"
"$crane" registry serve --address 127.0.0.1:0 >"$registry_log" 2>&1 &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true' EXIT
port=""
for _ in $(seq 100); do
    port="$(sed -n 's/.*serving on port \([0-9]*\).*/\1/p' "$registry_log")"
    [ -n "$port" ] && break
    kill -0 "$registry_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "build-image: crane's registry did not start:" >&2
    cat "$registry_log" >&2
    exit 1
fi
staging="127.0.0.1:$port/lifeboat:$version"

"$crane" append --oci-empty-base --new_layer "$out/layer.tar" --new_tag "$staging"
"$crane" mutate "$staging" --tag "$staging" --set-platform linux/amd64 \
    --user "$user" --entrypoint "$entrypoint" "${labels[@]}"
# The tarball names the image by its published tag; the layout by its version.
"$crane" mutate "$staging" --tag "$image" --output "$out/lifeboat-$version.tar"
"$crane" pull --format oci "$staging" "$out/oci"
# umoci and skopeo find an image in a layout by its org.opencontainers.image.ref.name:
# the index names the one manifest with the version.
digest="$("$crane" digest "$staging")"
manifest="$out/oci/blobs/${digest/://}"
if [ ! -f "$manifest" ]; then
    echo "build-image: the layout lacks the manifest $digest" >&2
    exit 1
fi
size="$(wc -c <"$manifest")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}\n' \
    "$digest" "$size" "$version" >"$out/oci/index.json"
echo "$digest" >"$out/digest"
echo "build-image: $image ($digest)"
echo "  $out/lifeboat-$version.tar"
echo "  $out/oci (tag $version)"
