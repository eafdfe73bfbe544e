#!/usr/bin/env bash
# helm and kubeconform, built from the Go module proxy into .infra/bin (no cluster is needed:
# the deploy tests lint, render and validate the chart offline).
# Usage: infra/k8s-tools.sh install|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HELM_VERSION=${HELM_VERSION:-v3.22.0}
KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-v0.8.0}
BIN_DIR="$STATE/bin"
LOG="$STATE/k8s-tools.log"

install() {
  mkdir -p "$BIN_DIR"
  take_lock k8s-tools
  go_build k8s-tools helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "$LOG"
  go_build k8s-tools kubeconform "$KUBECONFORM_VERSION" \
    github.com/yannh/kubeconform/cmd/kubeconform "$LOG"
}

status() {
  local missing=0
  go_built helm "$HELM_VERSION" && echo "helm: $HELM_VERSION" || { echo "helm: not built" && missing=1; }
  go_built kubeconform "$KUBECONFORM_VERSION" && echo "kubeconform: $KUBECONFORM_VERSION" ||
    { echo "kubeconform: not built" && missing=1; }
  return "$missing"
}

case "${1:-}" in
  install) install ;;
  status) status ;;
  *) echo "usage: $0 install|status" >&2 && exit 2 ;;
esac
