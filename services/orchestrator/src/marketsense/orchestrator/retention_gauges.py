"""Retention's gauges on the orchestrator's /metrics: a retention pass runs as a CronJob or a
CLI command, a process that ends before any scrape, so it writes its counts to its audit row and
the orchestrator, always up, reads the newest row and exposes it."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Gauge

from marketsense.common.db.engine import Database
from marketsense.common.db.models import RetentionPass
from marketsense.common.retention.passes import latest_pass

log = logging.getLogger(__name__)

DELETED_OBJECTS = Gauge(
    "marketsense_retention_deleted_objects",
    "Objects the newest finished retention pass deleted, by prefix (raw/, features/).",
    ["prefix"],
)
FREED_BYTES = Gauge(
    "marketsense_retention_freed_bytes",
    "Bytes of the objects the newest finished retention pass deleted, by prefix.",
    ["prefix"],
)
DELETED_ROWS = Gauge(
    "marketsense_retention_deleted_rows",
    "Rows the newest finished retention pass deleted, by table.",
    ["table"],
)
KEPT = Gauge(
    "marketsense_retention_kept_expired",
    "Expired objects the newest finished retention pass kept, by reason (live, retryable, "
    "held, lineage).",
    ["reason"],
)
PASS_SECONDS = Gauge(
    "marketsense_retention_pass_duration_seconds",
    "How long the newest finished retention pass took.",
)
PASS_FAILED = Gauge(
    "marketsense_retention_last_pass_failed",
    "1 when the newest finished retention pass stopped on an error (see retention_passes.error).",
)
LAST_SUCCESS = Gauge(
    "marketsense_retention_last_success_timestamp_seconds",
    "Unix time the newest retention pass that ended without error finished; 0 before any.",
)


def show_pass(row: RetentionPass | None, success: RetentionPass | None) -> None:
    """Set the gauges from the newest finished pass and the newest successful one."""
    for gauge in (DELETED_OBJECTS, FREED_BYTES, DELETED_ROWS, KEPT):
        gauge.clear()
    if row is not None and row.finished_at is not None:
        counts = row.counts or {}
        for prefix, figures in counts.get("prefixes", {}).items():
            DELETED_OBJECTS.labels(prefix).set(figures.get("objects", 0))
            FREED_BYTES.labels(prefix).set(figures.get("bytes", 0))
        for table, rows in counts.get("tables", {}).items():
            DELETED_ROWS.labels(table).set(rows)
        for reason, kept in counts.get("kept", {}).items():
            KEPT.labels(reason).set(kept)
        PASS_SECONDS.set((row.finished_at - row.started_at).total_seconds())
        PASS_FAILED.set(1 if row.error else 0)
    finished = success.finished_at if success is not None else None
    LAST_SUCCESS.set(finished.timestamp() if finished is not None else 0)


class RetentionGauges:
    """Reads the newest retention passes every interval and shows them as gauges."""

    def __init__(self, database: Database, *, interval_seconds: float):
        self.database = database
        self.interval_seconds = interval_seconds

    async def refresh(self) -> None:
        """Read the newest passes and set the gauges."""
        row = await latest_pass(self.database)
        success = await latest_pass(self.database, succeeded=True)
        show_pass(row, success)

    async def run_forever(self) -> None:
        """Refresh every interval until cancelled; a failed read is only logged."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the newest retention pass failed; trying again")
            await asyncio.sleep(self.interval_seconds)
