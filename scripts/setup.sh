#!/usr/bin/env bash
# Install uv if missing and the workspace's locked dependencies into .venv, and Debian's
# chromium, which the report's test opens the HTML report in.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  echo "installing uv" >&2
  python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
uv sync --frozen --quiet
if ! command -v chromium >/dev/null 2>&1; then
  # The same apt helper as the servers' scripts: one update an hour, a lock, a log in .infra.
  source infra/lib.sh
  if [[ $(id -u) -eq 0 ]] || command -v sudo >/dev/null 2>&1; then
    s=$(now)
    if [[ $(id -u) -eq 0 ]]; then apt_install chromium; else sudo -E bash -c \
      "source infra/lib.sh && apt_install chromium"; fi
    echo "chromium: installed $(chromium --version 2>/dev/null) in $(since "$s")" >&2
  else
    echo "chromium: not installed and no root to install it; the report's screenshot test skips" >&2
  fi
fi
