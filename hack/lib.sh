# Shared by the hack/ scripts (sourced, not run): pinned versions and where things live.
# shellcheck shell=bash source-path=SCRIPTDIR
# The variables are for the scripts that source this file.
# shellcheck disable=SC2034

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "${HACK_DIR}")"

# shellcheck source=versions.env
source "${HACK_DIR}/versions.env"

# Everything built or run lives outside the repository.
SO_CACHE="${XDG_CACHE_HOME:-${HOME}/.cache}/synapse-operators"
TOOLS_CACHE="${SO_CACHE}/tools"
CLUSTER_DIR="${SO_CACHE}/cluster"

# Directory holding one tool's binaries for the pinned version.
tool_dir() {
  local name="$1" version
  case "${name}" in
    kubernetes) version="${KUBERNETES_VERSION}" ;;
    etcd) version="${ETCD_VERSION}" ;;
    kwok) version="${KWOK_VERSION}" ;;
    helm) version="${HELM_VERSION}" ;;
    prometheus) version="${PROMETHEUS_VERSION}" ;;
    cnpg) version="${CNPG_VERSION}" ;;
    gatewayapi) version="${GATEWAY_API_VERSION}" ;;
    certmanager) version="${CERT_MANAGER_VERSION}" ;;
    promoperator) version="${PROMETHEUS_OPERATOR_VERSION}" ;;
    *) echo "unknown tool ${name}" >&2; return 1 ;;
  esac
  echo "${TOOLS_CACHE}/${name}-${version}"
}

# CloudNativePG's Cluster CRD at the pinned version, fetched by hack/build-tools (the e2e tests
# install it into the plane; hack/postgres env exports this path as SO_CNPG_CRD).
cnpg_crd_path() {
  echo "$(tool_dir cnpg)/postgresql.cnpg.io_clusters.yaml"
}

# The Gateway API's standard-channel CRDs at the pinned version, fetched by hack/build-tools
# (hack/cluster installs them into the plane).
gateway_api_crd_dir() {
  tool_dir gatewayapi
}

# cert-manager's CRDs at the pinned version, fetched by hack/build-tools (hack/cluster installs
# them into the plane).
cert_manager_crd_dir() {
  tool_dir certmanager
}

# The Prometheus Operator's ServiceMonitor, PodMonitor and PrometheusRule CRDs at the pinned
# version, fetched by hack/build-tools (hack/cluster installs them into the plane).
prometheus_operator_crd_dir() {
  tool_dir promoperator
}

log() {
  echo "[$(date +%H:%M:%S)] $*" >&2
}

die() {
  echo "error: $*" >&2
  exit 1
}

require_commands() {
  local c
  for c in "$@"; do
    command -v "${c}" >/dev/null 2>&1 || die "'${c}' is needed and not on PATH"
  done
}
