# sluice: a small, non-root runtime image.
#   docker build -t sluice:dev .
#   docker run --rm -p 9000:9000 -p 4317:4317 -p 4318:4318 sluice:dev --config /etc/sluice/config.yaml
# Build stage: the release binaries (sluice, and sluice-loadgen for in-cluster benchmarks).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bins \
 && strip target/release/sluice target/release/sluice-loadgen

# Runtime: distroless (glibc, CA certificates, no shell), as user 65532.
# checkov:skip=CKV_DOCKER_2: Kubernetes ignores HEALTHCHECK; the chart probes the health_check extension, and this image has no HTTP client to run one.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/sluice /usr/local/bin/sluice
COPY --from=build /src/target/release/sluice-loadgen /usr/local/bin/sluice-loadgen
USER 65532:65532
# http_logs, OTLP gRPC, OTLP HTTP, health_check, metrics.
EXPOSE 9000 4317 4318 13133 8888
ENTRYPOINT ["/usr/local/bin/sluice"]
