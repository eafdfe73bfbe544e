"""Bad ingest requests sent to ingestion: bad JSON, a schema version it does not read, an event
of the wrong type and a request for a task that does not exist are dead-lettered with their
reason, and the request after them is ingested."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketsense.cli.embedded import PipelineSettings
from marketsense.common.db.models import RawObject
from marketsense.common.events import IngestRequested, ObjectRef, RawDataReady
from marketsense.common.states import Stage, TaskState
from marketsense.ingestion.app import create_component as ingestion
from tests.bad_events_support import (
    BACKENDS,
    MISPLACED,
    NOT_JSON,
    UNREADABLE,
    UNSUPPORTED,
    backend_settings,
    dlq_errors,
    event,
    new_run,
    running,
    send,
    task_state,
    unused_trading_day,
)
from tests.conftest import eventually


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> PipelineSettings:
    """Embedded default (SQLite, folder, in-process bus) or the real servers."""
    return backend_settings(request, tmp_path, prefix)


@pytest.fixture
def as_of() -> dt.date:
    """A trading day no other test's run uses: a day may have only one live run."""
    return unused_trading_day()


async def test_ingestion_dead_letters_bad_requests_and_ingests_the_next_one(
    settings: PipelineSettings, as_of: dt.date
) -> None:
    topic = IngestRequested.topic
    async with running(settings, ingestion, topic) as (runtime, dead):
        run_id = await new_run(
            runtime, as_of=as_of, tasks={"GOOD": {Stage.INGEST: TaskState.PENDING}}
        )
        request = IngestRequested(as_of=as_of, lookback_days=30)
        await send(
            runtime,
            topic,
            [
                NOT_JSON,
                event(request, run_id=run_id, symbol="GOOD", version=99),
                event(
                    RawDataReady(
                        as_of=as_of,
                        bars=ObjectRef(uri="file:///x", sha256="0" * 64, size=0),
                        rows=0,
                    ),
                    run_id=run_id,
                    symbol="GOOD",
                ),
                event(request, run_id=str(uuid.uuid4()), symbol="NOTASK"),
                event(request, run_id=run_id, symbol="GOOD"),
            ],
        )

        async def ingested() -> bool:
            return await task_state(runtime, run_id, "GOOD", Stage.INGEST) == TaskState.SUCCESS

        await eventually(ingested, timeout=60)
        await eventually(lambda: len(dead) == 4)
        async with runtime.database.session() as session:
            raw = await session.scalar(
                select(func.count()).select_from(RawObject).where(RawObject.run_id == run_id)
            )

    assert raw is not None
    assert raw >= 1  # bars, and texts when the source has any
    reasons = dlq_errors(dead)
    assert reasons[0].startswith(UNREADABLE), reasons
    assert UNSUPPORTED in reasons[1], reasons
    assert MISPLACED in reasons[2], reasons
    assert reasons[3].startswith("NonRetryableError: no ingest task for run"), reasons
    assert {record.header("x-dlq-original-topic") for record in dead} == {
        runtime.bus.topic_name(topic)
    }
