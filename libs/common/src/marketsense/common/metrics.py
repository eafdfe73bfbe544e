"""Prometheus metrics shared by every service (one process-wide registry)."""

from prometheus_client import Counter, Histogram

HTTP_REQUEST_SECONDS = Histogram(
    "marketsense_http_request_duration_seconds",
    "HTTP request latency by route and status.",
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
HANDLER_SECONDS = Histogram(
    "marketsense_event_handler_duration_seconds",
    "Time spent handling one event, retries included, by topic and outcome.",
    ["topic", "group", "outcome"],
)
OUTBOX_RELAYED = Counter(
    "marketsense_outbox_relayed_total", "Outbox rows published to the bus.", ["service"]
)
