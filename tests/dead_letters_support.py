"""The orchestrator's dead-letter index under test: records as a `.dlq` topic carries them,
indexed as its consumer does, and the alerts a webhook received about them."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from pytest_httpserver import HTTPServer

from marketsense.common.alerts import AlertSettings, alerter_from_settings
from marketsense.common.bus import Record
from marketsense.common.db.models import DeadLetter
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.dead_letters.flows import index_dead_letter

AS_OF = dt.date(2026, 11, 18)
"""A day no other test runs for, so its runs never meet another test's live run."""
HOOK_PATH = "/alerts"
"""Where the test webhook receives alerts."""


@dataclass
class Pipeline:
    """Orchestrator, processing and prediction in one app, and API clients by role."""

    app: FastAPI
    runtime: Runtime
    reader: httpx.AsyncClient
    publisher: httpx.AsyncClient
    publisher_name: str


async def index_record(runtime: Runtime, record: Record) -> DeadLetter | None:
    """Index a record as the orchestrator's dead-letter consumer does, alerting as configured."""
    settings = runtime.settings
    assert isinstance(settings, AlertSettings)
    alerter = alerter_from_settings(settings, database=runtime.database, service=runtime.service)
    return await index_dead_letter(runtime, alerter, record)


def dlq_record(runtime: Runtime, offset: int, value: bytes, *, key: str = "BAD") -> Record:
    """An unreadable ingest request as the bus dead-letters it, at `offset` of the DLQ."""
    topic = runtime.bus.topic_name("ingest.requested")
    return Record(
        topic=topic + ".dlq",
        partition=0,
        offset=offset,
        key=key,
        value=value,
        headers=(
            ("x-dlq-original-topic", topic.encode()),
            ("x-dlq-error", b"UnreadableEvent: not JSON"),
            ("x-dlq-attempts", b"0"),
            ("x-dlq-failed-at", b"2026-11-18T21:30:00+00:00"),
        ),
    )


def dead_letter_alerts(httpserver: HTTPServer) -> list[dict[str, object]]:
    """Dead-letter alerts the webhook received (runs ending FAILED alert there too)."""
    received = (json.loads(request.data) for request, _ in httpserver.log)
    return [a for a in received if str(a["key"]).startswith("dead-letter:")]
