#!/usr/bin/env bash
# S3-compatible server on loopback: moto's standalone server, in-memory (data is lost on stop).
# Usage: infra/s3.sh install|start|stop|status
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S3_PORT=${S3_PORT:-19000}
S3_START_TIMEOUT=${S3_START_TIMEOUT:-60}
MOTO_VERSION=5.2.5

HOME_DIR="$STATE/s3"
# Own venv: moto pins botocore, which must not fight with the project's boto versions.
VENV="$STATE/moto-venv"
PIDFILE="$HOME_DIR/s3.pid"
LOG="$HOME_DIR/s3.log"
PATTERN="moto_server"

mkdir -p "$HOME_DIR"

# install [quiet]: start passes quiet, which hides only the "already installed" line.
install() {
  local s py log="$HOME_DIR/install.log"
  if [[ -f $VENV/.stamp && $(<"$VENV/.stamp") == "$MOTO_VERSION" ]]; then
    [[ ${1:-} == quiet ]] || echo "s3: already installed (moto $MOTO_VERSION)"
    return 0
  fi
  s=$(now)
  rm -rf "$VENV"
  # The real interpreter, not a pyenv shim that may resolve differently later.
  py=$(python3 -c 'import sys; print(sys.executable)')
  {
    if command -v uv >/dev/null; then
      UV_PYTHON_DOWNLOADS=never uv venv -q --python "$py" "$VENV" &&
        uv pip install -q --python "$VENV/bin/python" "moto[server]==$MOTO_VERSION"
    else
      "$py" -m venv "$VENV" && "$VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION"
    fi
  } >"$log" 2>&1 || die "s3: installing moto[server]==$MOTO_VERSION failed" "$log"
  echo "$MOTO_VERSION" >"$VENV/.stamp"
  echo "s3: installed moto $MOTO_VERSION in $(since "$s")"
}

# Any HTTP answer means the server is up (moto answers / with a bucket listing).
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
  spawn "$PIDFILE" "$LOG" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
  wait_healthy s3 "$S3_START_TIMEOUT" "$PIDFILE" "$PATTERN" "$LOG" healthy
  echo "s3: started moto $MOTO_VERSION on http://127.0.0.1:$S3_PORT in $(since "$s") (pid $(<"$PIDFILE"))"
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
