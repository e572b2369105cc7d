#!/usr/bin/env bash
# Installs what the test suite needs and is not built by cargo, only when missing:
#  - Debian's prometheus-alertmanager (the real Alertmanager, with amtool) for
#    crates/cli/tests/alertmanager.rs;
#  - Debian's prometheus (for promtool), with which scripts/check-monitoring.sh checks and
#    unit-tests the shipped alerting rules;
#  - jq, with which scripts/check-monitoring.sh reads the Grafana dashboard;
#  - openssl (command line), with which the webhook TLS tests make certificates;
#  - cargo-nextest, the test runner of scripts/test.sh;
#  - for the container image (scripts/build-image.sh, scripts/check-image.sh): the Rust
#    target x86_64-unknown-linux-musl and Debian's musl-tools (a static binary), jq, umoci
#    and runc (the image unpacked into an OCI bundle and run), binutils (readelf);
#  - Go (1.26 or newer) must be on the machine: it builds the real control plane from
#    Kubernetes' Go modules (checked here, not installed: Debian's Go is too old).
# Idempotent: a second run changes nothing.
set -euo pipefail

source "$(dirname "$0")/lib/install.sh"

if [ -x /usr/bin/prometheus-alertmanager ] && command -v amtool >/dev/null 2>&1; then
    echo "prometheus-alertmanager: present ($(/usr/bin/prometheus-alertmanager --version 2>&1 | head -n1))"
else
    echo "prometheus-alertmanager: installing the Debian package"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends prometheus-alertmanager
    # The package's service is not wanted here: tests start their own instances.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        as_root systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true
    fi
fi

# promtool (from Debian's prometheus package) checks and unit-tests the alerting rules.
if command -v promtool >/dev/null 2>&1; then
    echo "promtool: present ($(promtool --version 2>&1 | head -n1))"
else
    echo "promtool: installing the Debian package prometheus"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends prometheus
    # Only promtool is wanted: the package's Prometheus server is not.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

# scripts/check-monitoring.sh reads the Grafana dashboard with jq.
debian_command jq
# The TLS tests of the webhook make their certificates with the openssl command line.
debian_command openssl

# The container image: a static musl build, its config read with jq, its OCI bundle
# unpacked by umoci and run by runc, the binary's ELF headers read with readelf.
debian_command musl-gcc musl-tools
debian_command umoci
debian_command runc
debian_command readelf binutils
rust_target x86_64-unknown-linux-musl

if command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1; then
    echo "cargo-nextest: present"
else
    echo "cargo-nextest: installing"
    cargo install --locked cargo-nextest
fi

if command -v go >/dev/null 2>&1; then
    echo "go: present ($(go version))"
else
    echo "install-test-deps: Go 1.26 or newer is needed to build the real control plane (testing/kube)" >&2
    exit 1
fi
