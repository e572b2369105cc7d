# syntax=docker/dockerfile:1
# The lifeboat image: one static binary on an empty base, run as a numeric non-root user.
# Without a Docker daemon, scripts/build-image.sh builds the same image with crane.
#
#   docker build -t ghcr.io/lifeboat-dr/lifeboat:0.1.0 .

FROM docker.io/library/rust:1.95-bookworm AS builder
# musl: a static binary that needs no libc in the image. Its DNS resolver reads
# /etc/resolv.conf and /etc/hosts directly (which the kubelet mounts), so there is no NSS
# configuration to ship, as a static glibc binary would need.
RUN rustup target add x86_64-unknown-linux-musl \
    && apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p lifeboat --target x86_64-unknown-linux-musl \
    && install -D -s -m 0755 target/x86_64-unknown-linux-musl/release/lifeboat /out/lifeboat

# No shell, no libc, no CA bundle: TLS to the API servers uses the CA of each kubeconfig
# (or the in-cluster one), and notification webhooks the roots compiled into the binary.
FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="lifeboat" \
      org.opencontainers.image.description="Alert-driven disaster-recovery orchestrator for Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/lifeboat-dr/lifeboat" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/lifeboat /lifeboat
USER 65532:65532
ENTRYPOINT ["/lifeboat"]
