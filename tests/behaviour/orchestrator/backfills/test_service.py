"""A backfill's sessions, the key of its request, and which of its tasks have their input."""

from __future__ import annotations

import datetime as dt

import pytest

from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.engine import Database
from marketsense.common.db.models import Run, Task
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.orchestrator.backfills.service import (
    MAX_SESSIONS,
    EmptyRange,
    latest_backfill,
    ready_open_tasks,
    request_key,
    session_range,
)

XNYS = exchange_calendar("XNYS")


def test_a_range_of_sessions_is_counted_and_kept_as_asked() -> None:
    sessions = session_range(XNYS, start=dt.date(2026, 10, 22), end=dt.date(2026, 11, 20))

    assert (sessions.start, sessions.end, sessions.sessions) == (
        dt.date(2026, 10, 22),
        dt.date(2026, 11, 20),
        22,
    )
    assert sessions.notes == []


def test_days_that_are_no_sessions_move_inward_and_say_so() -> None:
    # New Year's Day 2026 (a Thursday) to Saturday 2026-01-10.
    sessions = session_range(XNYS, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 10))

    assert (sessions.start, sessions.end, sessions.sessions) == (
        dt.date(2026, 1, 2),
        dt.date(2026, 1, 9),
        6,
    )
    assert sessions.notes == [
        "start 2026-01-01 is no XNYS trading session: starting on 2026-01-02",
        "end 2026-01-10 is no XNYS trading session: ending on 2026-01-09",
    ]


def test_a_range_without_a_session_or_too_long_is_refused() -> None:
    with pytest.raises(EmptyRange, match=r"no XNYS trading session .* the next one is 2026-11-27"):
        session_range(XNYS, start=dt.date(2026, 11, 26), end=dt.date(2026, 11, 26))
    with pytest.raises(EmptyRange, match=f"at most {MAX_SESSIONS}; split the range"):
        session_range(XNYS, start=dt.date(1990, 1, 2), end=dt.date(2010, 1, 4))


def test_the_request_key_ignores_symbol_order_and_tells_ranges_apart() -> None:
    key = request_key(start=dt.date(2026, 1, 2), end=dt.date(2026, 1, 9), symbols=["B", "A"])

    assert key == request_key(
        start=dt.date(2026, 1, 2), end=dt.date(2026, 1, 9), symbols=["A", "B"]
    )
    assert len(key) == 64
    assert key != request_key(
        start=dt.date(2026, 1, 5), end=dt.date(2026, 1, 9), symbols=["A", "B"]
    )
    assert key != request_key(start=dt.date(2026, 1, 2), end=dt.date(2026, 1, 9), symbols=["A"])


async def test_open_tasks_are_ready_once_their_previous_stage_succeeded(
    database: Database,
) -> None:
    async with database.session() as session:
        session.add(
            Run(
                id="b1",
                as_of=dt.date(2026, 1, 9),
                start=dt.date(2026, 1, 2),
                kind="backfill",
                request_key="k" * 64,
                state=RunState.RUNNING,
                symbols=2,
            )
        )
        await session.flush()
        states = {
            "AAA": (TaskState.SUCCESS, TaskState.RUNNING, TaskState.PENDING),
            "BBB": (TaskState.PENDING, TaskState.PENDING, TaskState.PENDING),
        }
        for symbol, by_stage in states.items():
            for stage, state in zip(Stage, by_stage, strict=True):
                session.add(Task(run_id="b1", symbol=symbol, stage=stage, state=state))
        await session.commit()

        pending = await ready_open_tasks(session, run_id="b1", states={TaskState.PENDING})
        both = await ready_open_tasks(
            session, run_id="b1", states={TaskState.PENDING, TaskState.RUNNING}
        )
        found = await latest_backfill(session, key="k" * 64)

    assert [(t.symbol, t.stage) for t in pending] == [("BBB", "ingest")]
    assert [(t.symbol, t.stage) for t in both] == [("AAA", "process"), ("BBB", "ingest")]
    assert found is not None
    assert found.id == "b1"
