#!/usr/bin/env bash
# Stop all test services. Data under .infra/ is kept (except S3: gofakes3 is in-memory).
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

failed=0
for svc in prometheus s3 postgres kafka; do
  "$dir/$svc.sh" stop || failed=1
done
exit "$failed"
