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

# Module downloads and the build cache stay under .infra, so a second install is a no-op and
# nothing lands in the user's own Go folders.
export GOBIN="$BIN_DIR" GOMODCACHE="$STATE/go/mod" GOCACHE="$STATE/go/cache" CGO_ENABLED=0
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

# built NAME VERSION: the binary exists and reports VERSION.
built() {
  [[ -x $BIN_DIR/$1 ]] && grep -q -- "$2" "$BIN_DIR/$1.version" 2>/dev/null
}

# build NAME VERSION PACKAGE
build() {
  local s
  built "$1" "$2" && return 0
  command -v go >/dev/null || die "k8s-tools: Go is needed to build $1 (install golang 1.24 or newer)"
  s=$(now)
  go install -trimpath -ldflags="-s -w" "$3@$2" >>"$LOG" 2>&1 || die "k8s-tools: building $1 $2 failed" "$LOG"
  echo "$2" >"$BIN_DIR/$1.version"
  echo "k8s-tools: built $1 $2 in $(since "$s")"
}

install() {
  mkdir -p "$BIN_DIR"
  take_lock k8s-tools
  build helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
  build kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform
}

status() {
  local missing=0
  built helm "$HELM_VERSION" && echo "helm: $HELM_VERSION" || { echo "helm: not built" && missing=1; }
  built kubeconform "$KUBECONFORM_VERSION" && echo "kubeconform: $KUBECONFORM_VERSION" ||
    { echo "kubeconform: not built" && missing=1; }
  return "$missing"
}

case "${1:-}" in
  install) install ;;
  status) status ;;
  *) echo "usage: $0 install|status" >&2 && exit 2 ;;
esac
