#!/usr/bin/env bash
# The seed-002 FerretDB failover as an on-call engineer's runbook: the same four operations
# as lifeboat's plan (crates/bench/plans/ferretdb-failover.yaml), one kubectl call each.
#
#   DB_KUBECONFIG=... PROXY_KUBECONFIG=... bash failover.sh
#
# lifeboat-bench runs it against the same clusters as lifeboat (simulated, or real with
# --real) and times it.
set -euo pipefail

: "${DB_KUBECONFIG:?set DB_KUBECONFIG to the db cluster's kubeconfig}"
: "${PROXY_KUBECONFIG:?set PROXY_KUBECONFIG to the proxy cluster's kubeconfig}"
db() { kubectl --kubeconfig "$DB_KUBECONFIG" "$@"; }
proxy() { kubectl --kubeconfig "$PROXY_KUBECONFIG" "$@"; }

# 1. Demote cluster1 to standby.
db -n ferretdb patch perconapgclusters cluster1 --type merge \
    -p '{"spec":{"standby":{"enabled":true}}}' >/dev/null

# 2. Promote cluster2 to primary.
db -n ferretdb patch perconapgclusters cluster2 --type merge \
    -p '{"spec":{"standby":{"enabled":false}}}' >/dev/null

# 3. Read the new primary's address.
host=$(db -n ferretdb get perconapgclusters cluster2 -o jsonpath='{.status.host}')
if [ -z "$host" ]; then
    echo "cluster2 has no status.host" >&2
    exit 1
fi

# 4. Point HAProxy at it (haproxy.cfg as one JSON string, newlines escaped).
cfg="global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30m\n  timeout server 30m\nfrontend postgres\n  bind *:5432\n  default_backend postgres-primary\nbackend postgres-primary\n  server primary ${host}:5432 check\n"
proxy -n haproxy patch configmap haproxy-config --type merge \
    -p "{\"data\":{\"haproxy.cfg\":\"${cfg}\"}}" >/dev/null
