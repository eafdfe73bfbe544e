#!/usr/bin/env bash
# Set up everything, start Kafka, PostgreSQL, the S3 server and Prometheus on loopback, then run
# lint, type checks and every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
bash scripts/setup.sh
bash scripts/chromium.sh
export PATH="$HOME/.local/bin:$PATH"
# The tests start many Python processes (pytest, every service of a run, the CLI), each importing
# pandas, SQLAlchemy and FastAPI: without bytecode caches each one compiles those modules again,
# several CPU seconds apiece. The caches go to .venv and __pycache__ folders, which git ignores.
unset PYTHONDONTWRITEBYTECODE
# The servers start in the background while lint and type checks run (Kafka's start is mostly
# waiting); `wait` returns up.sh's exit status, so `set -e` stops here if a server failed to start.
mkdir -p .infra
bash infra/up.sh > .infra/exports &
servers=$!
echo "== lint and format"
uv run ruff check .
uv run ruff format --check .
echo "== type checks"
uv run mypy
wait "$servers"
eval "$(cat .infra/exports)"
echo "== tests"
# The slowest tests of every run are listed, so a test that grows slow is seen where it starts.
uv run pytest --durations=25 "$@"
echo "== done in $(( $(date +%s) - started )) s"
