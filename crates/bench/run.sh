#!/usr/bin/env bash
# The whole benchmark table in one command:
#
#   bash crates/bench/run.sh            # full run (BENCHMARKS.md), several minutes
#   bash crates/bench/run.sh --quick    # CI: fails only on correctness checks
#   bash crates/bench/run.sh --real     # the failover and a storm on three real control planes
#
# Builds lifeboat and lifeboat-bench (release, side by side in target/release) and the
# static musl lifeboat the image ships (the controller measured, unless --lifeboat says
# otherwise), runs the engine's criterion microbenchmarks (full run only; lifeboat-bench
# reports them from target/criterion), then lifeboat-bench with the arguments given
# (e.g. --json FILE).
# --real also builds the real control plane (scripts/build-kube.sh, needs Go; about a
# second when cached) and skips criterion: that run reports the failover and the storm
# (2 000 alerts unless --storm-alerts says otherwise), not matching or microbenchmarks.
set -euo pipefail
cd "$(dirname "$0")/../.."

# The controller measured is the binary the image ships: the static musl build
# (scripts/build-image.sh builds the same one). Its allocator, mimalloc, is part of what
# the memory rows measure; BENCHMARKS.md compares it with musl's and glibc's.
musl=x86_64-unknown-linux-musl
quick=0
real=0
lifeboat=(--lifeboat "target/$musl/release/lifeboat")
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --real) real=1 ;;
        --lifeboat | --lifeboat=*) lifeboat=() ;;
    esac
done

cargo build --release --locked -p lifeboat -p lifeboat-bench
if [ "${#lifeboat[@]}" -gt 0 ]; then
    source scripts/lib/install.sh
    rust_target "$musl"
    debian_command musl-gcc musl-tools
    cargo build --release --locked -p lifeboat --target "$musl"
fi
if [ "$real" -eq 1 ]; then
    bash scripts/build-kube.sh >/dev/null
elif [ "$quick" -eq 0 ]; then
    cargo bench --locked -p lifeboat-engine
fi
exec target/release/lifeboat-bench "${lifeboat[@]}" "$@"
