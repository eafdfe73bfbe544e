"""The retraining worker's Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

RETRAINS = Counter(
    "marketsense_retrains_total",
    "Retrain requests finished, by model and outcome (done or failed).",
    ["model", "outcome"],
)
RETRAIN_SECONDS = Histogram(
    "marketsense_retrain_duration_seconds",
    "Time one attempt at a retrain took, from taking the request to its challenger alias.",
    ["model"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600),
)
IN_PROGRESS = Gauge(
    "marketsense_retrains_in_progress", "Retrain attempts this process is working on now."
)
TRAINING_ROWS = Gauge(
    "marketsense_retrain_training_rows",
    "Labelled rows of the latest training set built, by model.",
    ["model"],
)
