# One image per operator: its static binary and a CA bundle on an empty base. The binary is
# built outside the image, so the build context is not the repository but a directory holding
#   bin/<OPERATOR>           the operator, linked statically against musl (no loader, no libc)
#   ca-certificates.crt      the CA bundle the kube client trusts besides the kubeconfig's CA
# which hack/image prepares, builds the binaries into, and builds this file on:
#   hack/image                      # all three, tagged ghcr.io/synapse-operators/<OPERATOR>:<appVersion>
#   hack/image synapse-operator     # one
# By hand, from such a directory: podman build -f Dockerfile --build-arg OPERATOR=synapse-operator DIR
# (docker build takes the same arguments). OPERATOR is synapse-operator, heisenbridge-operator or
# signal-operator; each chart's default image is ghcr.io/synapse-operators/<OPERATOR>:<appVersion>.
# No shell, no package manager, no other file: the operator needs none, and nothing needs pulling.

FROM scratch

ARG OPERATOR
ARG VERSION=unknown
ARG REVISION=unknown

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/${OPERATOR} /operator

# Not root, and numeric (there is no /etc/passwd): the charts run the Pod as the same UID, which
# the `restricted` Pod Security standard requires to be non-zero.
USER 65532:65532
# --metrics-addr and --health-addr (the charts' ports).
EXPOSE 8080 8081
ENTRYPOINT ["/operator"]
CMD ["run"]

LABEL org.opencontainers.image.title="${OPERATOR}" \
      org.opencontainers.image.description="${OPERATOR}: a Kubernetes operator of the synapse.opdev.io/v1alpha1 API (Matrix Synapse and its bridges)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/synapse-operators/synapse-operators" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="synapse-operators"
