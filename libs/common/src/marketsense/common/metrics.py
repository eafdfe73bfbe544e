"""Prometheus metrics shared by every service (one process-wide registry)."""

from prometheus_client import Counter, Gauge, Histogram

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Request methods a label may name; any other is counted as `other`."""


def method_label(method: str) -> str:
    """The `method` label of a request: one of a closed set, so a client inventing methods
    cannot add series."""
    return method if method in HTTP_METHODS else "other"


HTTP_REQUEST_SECONDS = Histogram(
    "marketsense_http_request_duration_seconds",
    "HTTP request latency by method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or other), "
    "route and status.",
    ["service", "method", "route", "status"],
)
EVENTS_CONSUMED = Counter(
    "marketsense_events_consumed_total", "Events taken off the bus, by topic.", ["topic", "group"]
)
EVENTS_PRODUCED = Counter(
    "marketsense_events_produced_total", "Events published to the bus, by topic.", ["topic"]
)
EVENTS_DEAD_LETTERED = Counter(
    "marketsense_events_dead_lettered_total",
    "Events sent to a dead-letter topic, by original topic and reason class.",
    ["topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "marketsense_consumer_lag",
    "Records on a topic a consumer group has not handled yet, over the partitions this process "
    "holds (sum by group and topic across replicas for the group's lag).",
    ["group", "topic"],
)
KAFKA_TOPIC_MISMATCHES = Gauge(
    "marketsense_kafka_topic_config_mismatches",
    "1 where an existing topic's partitions, replication_factor, min_insync_replicas or "
    "retention_ms differs from the kafka_topic_* settings at this process's start, else 0.",
    ["topic", "setting"],
)
HANDLER_SECONDS = Histogram(
    "marketsense_event_handler_duration_seconds",
    "Time spent handling one event, retries included, by topic and outcome.",
    ["topic", "group", "outcome"],
)
OUTBOX_RELAYED = Counter(
    "marketsense_outbox_relayed_total", "Outbox rows published to the bus.", ["service"]
)
MODEL_INFO = Gauge(
    "marketsense_model_info",
    "1 for the model version a service serves now, by where it came from (registry or local) "
    "and the graph that answers (fp32 or int8).",
    ["service", "model", "version", "source", "variant"],
)
MODEL_SWAPS = Counter(
    "marketsense_model_swaps_total",
    "Times a served model was replaced by another version while the service ran.",
    ["service", "model"],
)
MODEL_LOAD_FAILURES = Counter(
    "marketsense_model_load_failures_total",
    "Model versions that could not be downloaded, verified, loaded or warmed up.",
    ["service", "model", "version"],
)
TEXTS_UNSCORED = Counter(
    "marketsense_texts_unscored_total",
    "Texts kept but not scored as opinion, by reason (foreign, unknown_tokens, no_letters).",
    ["reason"],
)
ALERTS = Counter(
    "marketsense_alerts_total",
    "Alerts raised, by severity and outcome (sent, deduplicated, failed, unconfigured).",
    ["severity", "outcome"],
)
DEAD_LETTERS_RECORDED = Counter(
    "marketsense_dead_letters_recorded_total",
    "Dead-lettered records indexed for operators, by original topic.",
    ["topic"],
)
DEAD_LETTERS_REPLAYED = Counter(
    "marketsense_dead_letters_replayed_total",
    "Dead-lettered records republished to their original topic, by topic.",
    ["topic"],
)
RUNS_FINISHED = Counter(
    "marketsense_runs_finished_total",
    "Runs that reached a final state, by that state.",
    ["state"],
)
RUN_DURATION_SECONDS = Histogram(
    "marketsense_run_duration_seconds",
    "Time from a run's creation to its final state.",
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
)
TASKS_BY_STATE = Gauge(
    "marketsense_tasks",
    "Tasks of live (PENDING or RUNNING) runs by stage and state, refreshed by the reaper.",
    ["stage", "state"],
)
TASK_RETRIES = Counter(
    "marketsense_task_retries_total",
    "Tasks put back to PENDING and re-queued, by stage and reason (operator, timeout).",
    ["stage", "reason"],
)
DEPENDENCY_UP = Gauge(
    "marketsense_dependency_up",
    "1 while a dependency (database, kafka, object-store) answers this service's probes, 0 from "
    "the moment a consumer found it unreachable until it answers again.",
    ["service", "dependency"],
)
