#!/usr/bin/env bash
# Set up and run one pipeline run on the embedded default (SQLite, a folder, in-process bus).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"
exec uv run marketsense demo "$@"
