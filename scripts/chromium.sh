#!/usr/bin/env bash
# Install Debian's chromium if missing: the report's test opens the HTML report in it. The test
# command runs this; the demo does not need it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  # The same apt helper as the servers' scripts: one update an hour, a lock, a log in .infra.
  if [[ $(id -u) -eq 0 ]]; then
    (source infra/lib.sh && s=$(now) && apt_install chromium &&
      echo "chromium: installed in $(since "$s")" >&2)
  elif sudo -n true 2>/dev/null; then
    sudo -n -E bash -c 'source infra/lib.sh && apt_install chromium'
  else
    echo "chromium: not installed, and no root to install it: the report's screenshot test" \
      "skips (and fails where CI=true)" >&2
  fi
fi
