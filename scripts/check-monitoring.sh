#!/usr/bin/env bash
# Checks the monitoring assets with the real Prometheus and Alertmanager tools (Debian's
# prometheus and prometheus-alertmanager packages, installed by
# scripts/install-test-deps.sh when missing):
#  - the shipped alerting rules (charts/lifeboat/files/prometheus-rules.yaml) and the
#    FerretDB example's (examples/prometheus/ferretdb-rules.yaml): `promtool check rules`,
#    and their unit tests, testing/monitoring/*.test.yaml: `promtool test rules`;
#  - the example Prometheus configuration: `promtool check config`;
#  - the example Alertmanager configuration: `amtool check-config`, and its routing of the
#    FerretDB alert (to lifeboat and on-call) and of other alerts (on-call only);
#  - the Grafana dashboard: valid JSON, and every query valid PromQL (checked by promtool
#    as recording rules, with Grafana's variables replaced by values).
# That every metric the rules and the dashboard name is exported by the controller is
# checked by crates/cli/tests/monitoring_assets.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

rules=charts/lifeboat/files/prometheus-rules.yaml
example_rules=examples/prometheus/ferretdb-rules.yaml
dashboard=charts/lifeboat/files/grafana-dashboard.json
alertmanager_config=examples/alertmanager/alertmanager.yml

if ! command -v promtool >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1 \
    || ! command -v jq >/dev/null 2>&1; then
    bash scripts/install-test-deps.sh
fi

echo "-- promtool check rules"
promtool check rules "$rules" "$example_rules"

echo "-- promtool check config (examples/prometheus/prometheus.yml)"
(cd examples/prometheus && promtool check config prometheus.yml)

echo "-- promtool test rules"
shopt -s nullglob
tests=(testing/monitoring/*.test.yaml)
if [ "${#tests[@]}" -eq 0 ]; then
    echo "check-monitoring: no unit tests in testing/monitoring" >&2
    exit 1
fi
promtool test rules "${tests[@]}"

echo "-- amtool check-config"
amtool check-config "$alertmanager_config"

echo "-- amtool config routes test"
# Fails when the labels (after the expected receivers) reach other receivers.
routes() {
    amtool config routes test --config.file="$alertmanager_config" --verify.receivers="$1" \
        "${@:2}" 2>/dev/null || {
        echo "check-monitoring: ${*:2} should reach exactly the receivers $1" >&2
        exit 1
    }
}
routes lifeboat,on-call alertname=PostgresPrimaryDown app=ferretdb severity=critical
routes on-call alertname=PostgresPrimaryDown app=other
routes on-call alertname=LifeboatRunFailed severity=critical

echo "-- Grafana dashboard: JSON and PromQL"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Each panel query becomes a recording rule, so that promtool parses it; Grafana's
# variables get values of their kind first.
jq '{groups: [{name: "dashboard", rules: [
        [.panels[] | .targets[]? | .expr] | to_entries[]
        | {record: "dashboard:query_\(.key)",
           expr: (.value | gsub("\\$__rate_interval"; "5m") | gsub("\\$job"; ".+"))}
    ]}]}' "$dashboard" >"$work/dashboard-queries.json"
queries="$(jq '.groups[0].rules | length' "$work/dashboard-queries.json")"
if [ "$queries" -eq 0 ]; then
    echo "check-monitoring: the dashboard has no queries" >&2
    exit 1
fi
promtool check rules "$work/dashboard-queries.json"
echo "dashboard: $queries queries parse"
