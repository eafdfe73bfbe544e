"""Bad ingest requests sent to ingestion: bad JSON, a schema version it does not read, an event
of the wrong type and a request for a task that does not exist are dead-lettered with their
reason, and the request after them is ingested; a bars file that cannot be read fails its symbol
at once, with its notes, while one with daylight-saving offsets is read."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from marketsense.cli.embedded import PipelineSettings
from marketsense.common.calendar import exchange_calendar
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
    find_task,
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


def _export(root: Path, symbol: str, days: list[dt.date], *, dates: list[str]) -> None:
    """A bars CSV as a broker's export writes it: `dates` as given, steady prices and volume."""
    close = np.linspace(100.0, 130.0, len(days)).round(2)
    frame = pd.DataFrame(
        {
            "date": dates,
            "open": close - 0.4,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.resize([1.2e6, 0.9e6, 1.5e6], len(days)),
        }
    )
    (root / "bars").mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "bars" / f"{symbol}.csv", index=False)


async def test_a_bad_file_fails_its_symbol_at_once_and_offsets_of_both_seasons_are_read(
    settings: PipelineSettings, tmp_path: Path, as_of: dt.date
) -> None:
    # A year of sessions spans both daylight-saving changes.
    days = exchange_calendar().sessions(as_of - dt.timedelta(days=370), as_of)[-250:]
    closes = pd.DatetimeIndex(days) + pd.Timedelta(hours=16)
    local = closes.tz_localize("America/New_York")
    _export(tmp_path, "DST", days, dates=[t.isoformat() for t in local])
    _export(tmp_path, "USDATES", days, dates=[d.strftime("%m/%d/%Y") for d in days])
    _export(tmp_path, "WEEKEND", days[:2], dates=["2017-12-30", "2017-12-31"])
    settings = settings.model_copy(update={"source": "files", "files_root": tmp_path})
    topic = IngestRequested.topic
    symbols = ("DST", "USDATES", "WEEKEND")
    async with running(settings, ingestion, topic) as (runtime, dead):
        run_id = await new_run(
            runtime, as_of=as_of, tasks={s: {Stage.INGEST: TaskState.PENDING} for s in symbols}
        )
        request_ = IngestRequested(as_of=as_of, lookback_days=60)
        await send(runtime, topic, [event(request_, run_id=run_id, symbol=s) for s in symbols])

        async def settled() -> bool:
            states = [await task_state(runtime, run_id, s, Stage.INGEST) for s in symbols]
            return states == [TaskState.SUCCESS, TaskState.FAILED, TaskState.FAILED]

        await eventually(settled, timeout=60)
        await eventually(lambda: len(dead) == 2)  # the dead letters go out after the failures
        tasks = {s: await find_task(runtime, run_id, s, Stage.INGEST) for s in symbols}

    assert settings.handler_max_attempts == 3
    dst, us_dates, weekend = (tasks[s] for s in symbols)
    assert dst is not None
    assert us_dates is not None
    assert weekend is not None
    assert dst.notes is None  # every row read, each on its own day, nothing to say
    assert us_dates.attempts == 1  # not retried as if the network had failed
    assert us_dates.last_error == (
        "SourceRejected: files: bars for USDATES: column date, row 1: cannot read "
        f"'{days[0].strftime('%m/%d/%Y')}' as a date (use ISO 8601, e.g. 2024-03-15); "
        "250 of 250 rows of that column are unreadable"
    )
    assert weekend.attempts == 1
    assert weekend.last_error is not None
    assert "files has no bars for WEEKEND" in weekend.last_error
    assert weekend.notes == (
        "WEEKEND: dropped 2 rows dated on days XNYS does not trade: 2017-12-30, 2017-12-31"
    )
    reasons = sorted(dlq_errors(dead))
    assert reasons[0].startswith("NonRetryableError: files has no bars for WEEKEND"), reasons
    assert reasons[1].startswith("SourceRejected: files: bars for USDATES: column date"), reasons
