#!/usr/bin/env bash
# Start all test services (installing them on first use), then print the environment the
# tests need on stdout, so `eval "$(infra/up.sh)"` works. Status lines go to stderr.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# In parallel: Kafka's JVM start dominates and the others finish in its shadow. Building helm
# and kubeconform (first time only) takes longest; it needs no server, only the Go proxy.
pids=()
for svc in kafka postgres s3 prometheus; do
  "$dir/$svc.sh" start >&2 &
  pids+=($!)
done
"$dir/k8s-tools.sh" install >&2 &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
((failed == 0)) || { echo "ERROR: infra/up.sh: a service failed to start (see above)" >&2 && exit 1; }

source "$dir/env.sh"
for var in INFRA_DIR INFRA_STATE_DIR MARKETSENSE_TEST_KAFKA MARKETSENSE_TEST_PG_DSN \
  MARKETSENSE_TEST_S3_ENDPOINT MARKETSENSE_TEST_PROMETHEUS MARKETSENSE_TEST_PROMETHEUS_TARGETS \
  MARKETSENSE_TEST_K8S_BIN; do
  printf 'export %s=%q\n' "$var" "${!var}"
done
