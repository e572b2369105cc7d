#!/usr/bin/env bash
# The whole benchmark table in one command:
#
#   bash crates/bench/run.sh            # full run (BENCHMARKS.md), several minutes
#   bash crates/bench/run.sh --quick    # CI: fails only on correctness checks
#   bash crates/bench/run.sh --real     # the failover and a storm on three real control planes
#
# Builds lifeboat and lifeboat-bench (release, side by side in target/release), runs the
# engine's criterion microbenchmarks (full run only; lifeboat-bench reports them from
# target/criterion), then lifeboat-bench with the arguments given (e.g. --json FILE).
# --real also builds the real control plane (scripts/build-kube.sh, needs Go; about a
# second when cached) and skips criterion: that run reports the failover and the storm
# (2 000 alerts unless --storm-alerts says otherwise), not matching or microbenchmarks.
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0
real=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --real) real=1 ;;
    esac
done

cargo build --release --locked -p lifeboat -p lifeboat-bench
if [ "$real" -eq 1 ]; then
    bash scripts/build-kube.sh >/dev/null
elif [ "$quick" -eq 0 ]; then
    cargo bench --locked -p lifeboat-engine
fi
exec target/release/lifeboat-bench "$@"
