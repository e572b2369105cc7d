#!/usr/bin/env bash
# The whole benchmark table in one command:
#
#   bash crates/bench/run.sh            # full run (BENCHMARKS.md), several minutes
#   bash crates/bench/run.sh --quick    # CI: fails only on correctness checks
#
# Builds lifeboat and lifeboat-bench (release, side by side in target/release), runs the
# engine's criterion microbenchmarks (full run only; lifeboat-bench reports them from
# target/criterion), then lifeboat-bench with the arguments given (e.g. --json FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0
for arg in "$@"; do
    if [ "$arg" = "--quick" ]; then
        quick=1
    fi
done

cargo build --release --locked -p lifeboat -p lifeboat-bench
if [ "$quick" -eq 0 ]; then
    cargo bench --locked -p lifeboat-engine
fi
exec target/release/lifeboat-bench "$@"
