#!/usr/bin/env bash
# Starts real Kubernetes control planes on loopback, one per NAME: embedded etcd,
# kube-apiserver (RBAC + Node authorization, ServiceAccount tokens, the default
# admission chain), kube-controller-manager and a node agent that runs Job pods
# without a container runtime. Writes DIR/NAME.kubeconfig (admin) for each and
# serves until interrupted, then stops them all.
#
#   scripts/kube-up.sh [--dir DIR] NAME...
set -euo pipefail
usage() { echo "usage: $0 [--dir DIR] NAME..." >&2; exit 2; }

dir=.
names=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dir) [ $# -ge 2 ] || usage; dir="$2"; shift 2 ;;
        --dir=*) dir="${1#--dir=}"; shift ;;
        -h|--help) usage ;;
        -*) usage ;;
        *) names+=("$1"); shift ;;
    esac
done
[ ${#names[@]} -gt 0 ] || usage
mkdir -p "$dir"

bin="$(bash "$(dirname "$0")/build-kube.sh")"

pids=()
stop() {
    trap - INT TERM EXIT
    [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
    wait || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

for name in "${names[@]}"; do
    "$bin" --name "$name" --dir "$dir" >"$dir/$name.ready" 2>"$dir/$name.log" &
    pids+=($!)
done

deadline=$((SECONDS + 180))
for i in "${!names[@]}"; do
    name="${names[$i]}"
    until [ -s "$dir/$name.ready" ]; do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            echo "kube-up: cluster $name failed to start; the end of $dir/$name.log:" >&2
            tail -n 20 "$dir/$name.log" >&2
            exit 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "kube-up: cluster $name not ready within 180s (see $dir/$name.log)" >&2
            exit 1
        fi
        sleep 0.2
    done
    cat "$dir/$name.ready"
done
echo "serving ${#names[@]} cluster(s); Ctrl-C stops them"
# Serve until interrupted, or until a cluster stops by itself (reported).
set +e
wait -n "${pids[@]}"
status=$?
echo "kube-up: a cluster stopped (exit $status); stopping the others" >&2
exit 1
