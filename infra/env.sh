# Environment for the integration tests. Source it (bash): `. infra/env.sh`
# Deliberately no `set -euo pipefail`: this file runs inside the caller's shell, where
# those options would linger and, e.g., close an interactive shell on the first failure.
# Ports follow the same overrides as the scripts (KAFKA_PORT, PG_PORT, S3_PORT, PROM_PORT).

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export INFRA_DIR
INFRA_STATE_DIR="$(dirname "$INFRA_DIR")/.infra"
export INFRA_STATE_DIR
export MARKETSENSE_TEST_KAFKA="127.0.0.1:${KAFKA_PORT:-19092}"
export MARKETSENSE_TEST_PG_DSN="postgresql://marketsense@127.0.0.1:${PG_PORT:-15432}"
export MARKETSENSE_TEST_S3_ENDPOINT="http://127.0.0.1:${S3_PORT:-19000}"
export MARKETSENSE_TEST_PROMETHEUS="http://127.0.0.1:${PROM_PORT:-19090}"
export MARKETSENSE_TEST_PROMETHEUS_TARGETS="$INFRA_STATE_DIR/prometheus/targets"
export MARKETSENSE_TEST_K8S_BIN="$INFRA_STATE_DIR/bin"
