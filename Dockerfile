# One image per operator, built from this workspace:
#   docker build --build-arg OPERATOR=synapse-operator -t ghcr.io/synapse-operators/synapse-operator:0.1.0 .
# OPERATOR is synapse-operator, heisenbridge-operator or signal-operator; each chart's default
# image is ghcr.io/synapse-operators/<OPERATOR>:<appVersion>.
# The binary is linked statically against musl and runs as a non-root user on a base image with
# no shell and no package manager.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-alpine AS builder
ARG OPERATOR
RUN test -n "${OPERATOR}" || { echo "--build-arg OPERATOR=<operator crate> is required" >&2; exit 1; }
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
# rustls with ring: no OpenSSL, so musl's target links a fully static binary.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p "${OPERATOR}" --bin "${OPERATOR}" \
    && cp "target/release/${OPERATOR}" /operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /operator /operator
# The distroless "nonroot" user; the charts run the Pod as the same UID.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/operator"]
CMD ["run"]
