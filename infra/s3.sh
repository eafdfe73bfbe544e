#!/usr/bin/env bash
# S3-compatible server on loopback: gofakes3, built from the Go module proxy, in-memory (data is
# lost on stop). A compiled server keeps up with the services on two cores, where moto's Python
# server took a sixth of the pipeline's CPU (bench/RESULTS.md).
# Usage: infra/s3.sh install|start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S3_PORT=${S3_PORT:-19000}
S3_START_TIMEOUT=${S3_START_TIMEOUT:-60}
GOFAKES3_VERSION=v1.2.0

HOME_DIR="$STATE/s3"
BIN="$STATE/bin/gofakes3"
PIDFILE="$HOME_DIR/s3.pid"
LOG="$HOME_DIR/s3.log"
PATTERN="gofakes3"

mkdir -p "$HOME_DIR"

# install [quiet]: start passes quiet, which hides only the "already installed" line.
install() {
  if go_built gofakes3 "$GOFAKES3_VERSION"; then
    [[ ${1:-} == quiet ]] || echo "s3: already installed (gofakes3 $GOFAKES3_VERSION)"
    return 0
  fi
  go_build s3 gofakes3 "$GOFAKES3_VERSION" github.com/johannesboyne/gofakes3/cmd/gofakes3 \
    "$HOME_DIR/install.log"
}

# Any HTTP answer means the server is up (it answers / with a bucket listing).
healthy() { [[ $(http_status "http://127.0.0.1:$S3_PORT/") != 000 ]]; }

start() {
  local s
  take_lock s3 # also keeps two first-time starts from installing at once
  install quiet
  s=$(now)
  if pid_alive "$PIDFILE" "$PATTERN"; then
    wait_healthy s3 "$S3_START_TIMEOUT" "$PIDFILE" "$PATTERN" "$LOG" healthy
    echo "s3: already running on http://127.0.0.1:$S3_PORT (pid $(<"$PIDFILE"))"
    return 0
  fi
  if port_open "$S3_PORT"; then die "s3: port $S3_PORT is already in use by another process"; fi
  spawn "$PIDFILE" "$LOG" "$BIN" -backend memory -host "127.0.0.1:$S3_PORT"
  wait_healthy s3 "$S3_START_TIMEOUT" "$PIDFILE" "$PATTERN" "$LOG" healthy
  echo "s3: started gofakes3 $GOFAKES3_VERSION on http://127.0.0.1:$S3_PORT in $(since "$s") (pid $(<"$PIDFILE"))"
}

status() {
  if pid_alive "$PIDFILE" "$PATTERN" && healthy; then
    echo "s3: running on http://127.0.0.1:$S3_PORT (pid $(<"$PIDFILE"))"
  elif pid_alive "$PIDFILE" "$PATTERN"; then
    echo "s3: process $(<"$PIDFILE") up but not answering on http://127.0.0.1:$S3_PORT"
    return 1
  else
    echo "s3: stopped"
    return 1
  fi
}

case "${1:-}" in
  install) take_lock s3 && install ;;
  start) start ;;
  stop) take_lock s3 && stop_pid s3 "$PIDFILE" "$PATTERN" 10 ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2 && exit 2 ;;
esac
