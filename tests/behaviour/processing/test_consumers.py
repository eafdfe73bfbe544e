"""Bad raw-data events sent to processing: bad JSON, a schema version it does not read, an event
of the wrong type and a reference to a missing object are dead-lettered with their reason, and
the event after them is processed.

Processing's checksum mismatch is covered by cli/test_embedded.py, through the whole pipeline.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from marketsense.cli.embedded import PipelineSettings
from marketsense.common.events import IngestRequested, ObjectRef, RawDataReady
from marketsense.common.features import MIN_BARS
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.processing.app import create_component as processing
from tests.bad_events_support import (
    BACKENDS,
    MISPLACED,
    NOT_JSON,
    UNREADABLE,
    UNSUPPORTED,
    backend_settings,
    dlq_errors,
    event,
    find_task,
    missing,
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


async def _stored_bars(runtime: Runtime, *, run_id: str, as_of: dt.date, symbol: str) -> ObjectRef:
    bars = SimulatedMarket(seed=7).daily_bars(symbol, as_of=as_of, days=MIN_BARS)
    return await runtime.store.put(f"raw/test/{run_id}/{symbol}.parquet", to_parquet_bytes(bars))


async def test_processing_dead_letters_bad_raw_data_events_and_processes_the_next_one(
    settings: PipelineSettings, as_of: dt.date, sentiment_model_dir: Path
) -> None:
    topic = RawDataReady.topic
    settings = settings.model_copy(update={"sentiment_model_path": sentiment_model_dir})
    async with running(settings, processing, topic) as (runtime, dead):
        ingested = {Stage.INGEST: TaskState.SUCCESS, Stage.PROCESS: TaskState.PENDING}
        run_id = await new_run(runtime, as_of=as_of, tasks={"GONE": ingested, "GOOD": ingested})
        bars = await _stored_bars(runtime, run_id=run_id, as_of=as_of, symbol="GOOD")
        good = RawDataReady(as_of=as_of, bars=bars, rows=60)
        await send(
            runtime,
            topic,
            [
                NOT_JSON,
                event(good, run_id=run_id, symbol="GOOD", version=99),
                event(IngestRequested(as_of=as_of, lookback_days=30), run_id=run_id, symbol="GOOD"),
                event(
                    RawDataReady(as_of=as_of, bars=missing(bars), rows=60),
                    run_id=run_id,
                    symbol="GONE",
                ),
                event(good, run_id=run_id, symbol="GOOD"),
            ],
        )

        async def processed() -> bool:
            return await task_state(runtime, run_id, "GOOD", Stage.PROCESS) == TaskState.SUCCESS

        await eventually(processed, timeout=60)
        await eventually(lambda: len(dead) == 4)
        gone = await find_task(runtime, run_id, "GONE", Stage.PROCESS)

    reasons = dlq_errors(dead)
    assert reasons[0].startswith(UNREADABLE), reasons
    assert UNSUPPORTED in reasons[1], reasons
    assert MISPLACED in reasons[2], reasons
    assert reasons[3].startswith("ObjectNotFound: no object at"), reasons
    assert gone is not None
    assert gone.state == TaskState.FAILED
    assert (gone.last_error or "").startswith("ObjectNotFound")
