"""Backfill flows: a new request starts one run; the same one again moves that run on, and the
events it sends again are rebuilt from what the run recorded, its first day included."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import Run
from marketsense.common.events import FeaturesReady, IngestRequested, RawDataReady
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.orchestrator.backfills.flows import WAITING, request_backfill
from marketsense.orchestrator.backfills.service import SessionRange
from marketsense.orchestrator.runs.flows import settle_run
from tests.conftest import eventually
from tests.orchestrator_support import (
    Orchestra,
    claim,
    fail_symbol,
    finish,
    orchestrator_settings,
    record_raw,
    serve_orchestrator,
    succeed_symbol,
    task_rows,
)

RANGE = SessionRange(start=dt.date(2026, 10, 22), end=dt.date(2026, 11, 20), sessions=22)


@pytest.fixture
async def orchestra(
    tmp_path: Path, database: Database, database_url: str
) -> AsyncIterator[Orchestra]:
    """An orchestrator on an empty database of each kind; no failure is tolerated."""
    settings = orchestrator_settings(tmp_path, database_url, failure_threshold=0.0)
    async with serve_orchestrator(settings) as served:
        yield served


async def _request(orchestra: Orchestra, *resend: TaskState) -> tuple[str, bool, int]:
    started = await request_backfill(
        runtime=orchestra.runtime,
        sessions=RANGE,
        symbols=["AAA", "BBB"],
        lookback_days=70,
        failure_threshold=0.0,
        actor="tester",
        resend=set(resend) or WAITING,
    )
    return started.run_id, started.created, started.requeued


async def test_a_live_backfill_sends_its_ready_tasks_again_with_its_first_day(
    orchestra: Orchestra,
) -> None:
    run_id, created, _ = await _request(orchestra)
    await claim(orchestra.runtime, run_id, "AAA", Stage.INGEST)
    await finish(orchestra.runtime, run_id, "AAA", Stage.INGEST)
    await record_raw(orchestra.runtime, run_id, "AAA")
    await claim(orchestra.runtime, run_id, "AAA", Stage.PROCESS)

    waiting = await _request(orchestra)
    running_too = await _request(orchestra, TaskState.PENDING, TaskState.RUNNING)

    assert created
    assert waiting == (run_id, False, 1)  # BBB's ingest; AAA's process is RUNNING
    assert running_too == (run_id, False, 2)
    await eventually(lambda: len(orchestra.recorder.of(IngestRequested, run_id)) == 4)
    assert {
        (p.start, p.as_of, p.lookback_days)  # type: ignore[attr-defined]
        for _, p in orchestra.recorder.of(IngestRequested, run_id)
    } == {(RANGE.start, RANGE.end, 70)}
    await eventually(lambda: orchestra.recorder.of(RawDataReady, run_id))
    [(symbol, raw)] = orchestra.recorder.of(RawDataReady, run_id)
    assert symbol == "AAA"
    assert isinstance(raw, RawDataReady)
    assert (raw.start, raw.as_of) == (RANGE.start, RANGE.end)
    # Nothing changed state: the tasks wait for their events as before.
    tasks = await task_rows(orchestra.runtime, run_id)
    assert tasks[("AAA", "process")].state == TaskState.RUNNING
    assert tasks[("BBB", "ingest")].state == TaskState.PENDING


async def test_a_failed_backfill_retries_its_failed_task_with_its_first_day(
    orchestra: Orchestra,
) -> None:
    run_id, _, _ = await _request(orchestra)
    await succeed_symbol(orchestra.runtime, run_id, "AAA")
    await fail_symbol(
        orchestra.runtime,
        run_id,
        "BBB",
        Stage.PREDICT,
        "model missing",
        notifier=orchestra.recorder,
    )
    assert len(orchestra.recorder.alerts) == 1

    again = await _request(orchestra)

    assert again == (run_id, False, 1)
    tasks = await task_rows(orchestra.runtime, run_id)
    assert tasks[("BBB", "predict")].state == TaskState.PENDING
    await eventually(lambda: orchestra.recorder.of(FeaturesReady, run_id))
    [(_, features)] = orchestra.recorder.of(FeaturesReady, run_id)
    assert isinstance(features, FeaturesReady)
    assert (features.start, features.as_of, features.rows) == (RANGE.start, RANGE.end, 22)


async def test_a_successful_backfill_is_returned_as_it_is(orchestra: Orchestra) -> None:
    run_id, _, _ = await _request(orchestra)
    for symbol in ("AAA", "BBB"):
        await succeed_symbol(orchestra.runtime, run_id, symbol)
    assert (
        await settle_run(runtime=orchestra.runtime, notifier=orchestra.recorder, run_id=run_id)
        == RunState.SUCCESS
    )

    assert await _request(orchestra) == (run_id, False, 0)


async def test_two_identical_requests_racing_start_one_run(orchestra: Orchestra) -> None:
    first, second = await asyncio.gather(_request(orchestra), _request(orchestra))

    assert first[0] == second[0]
    assert sorted([first[1], second[1]]) == [False, True]
    async with orchestra.runtime.database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Run)) == 1
