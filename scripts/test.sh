#!/usr/bin/env bash
# Set up everything, start Kafka, PostgreSQL, the S3 server and Prometheus on loopback, then run
# lint, type checks and every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bash scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"
# An assignment keeps up.sh's exit status, so `set -e` stops here if a server failed to start.
exports=$(bash infra/up.sh)
eval "$exports"
echo "== lint and format"
uv run ruff check .
uv run ruff format --check .
echo "== type checks"
uv run mypy
echo "== tests"
uv run pytest "$@"
echo "== done in $(( $(date +%s) - started )) s"
