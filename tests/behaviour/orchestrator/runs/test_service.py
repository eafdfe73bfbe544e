"""Runs in the caller's transaction: read with their tasks, paged through newest first with
opaque cursors, found idle or ready to settle, and moved with compare-and-set."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import OutboxMessage, Run, Task
from marketsense.common.events import RunStateChanged, parse_event
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.orchestrator.runs.service import (
    change_state,
    decode_run_cursor,
    encode_run_cursor,
    finished_symbols,
    idle_runs,
    list_runs,
    live_run_id,
    read_run,
    settleable_runs,
)
from tests.conftest import TEST_AS_OF

NOW = dt.datetime.now(dt.UTC)
"""When this module's runs are made: their times are set from it."""


async def _add_runs(database: Database, *runs: Run, tasks: tuple[Task, ...] = ()) -> None:
    async with database.session() as session:
        session.add_all(runs)
        await session.flush()
        session.add_all(tasks)
        await session.commit()


def _run(
    run_id: str, *, state: RunState = RunState.RUNNING, days_back: int = 0, **more: object
) -> Run:
    fields: dict[str, object] = {
        "id": run_id,
        "as_of": TEST_AS_OF - dt.timedelta(days=days_back),
        "state": state,
        "symbols": 2,
        "created_at": NOW - dt.timedelta(days=days_back),
    }
    return Run(**(fields | more))


def _task(run_id: str, symbol: str, stage: Stage, state: TaskState, **more: object) -> Task:
    return Task(run_id=run_id, symbol=symbol, stage=stage, state=state, attempts=1, **more)


async def test_a_run_is_read_with_counts_per_stage_its_failures_and_cleaning_notes(
    database: Database,
) -> None:
    await _add_runs(
        database,
        _run("r1", state=RunState.PARTIAL),
        tasks=(
            _task(
                "r1", "AAA", Stage.INGEST, TaskState.SUCCESS, notes="negative price\nout of order"
            ),
            _task("r1", "AAA", Stage.PROCESS, TaskState.SUCCESS),
            _task("r1", "BBB", Stage.INGEST, TaskState.FAILED, last_error="source down"),
            _task("r1", "BBB", Stage.PROCESS, TaskState.CANCELLED),
        ),
    )
    async with database.session() as session:
        run = await read_run(session=session, run_id="r1")
        missing = await read_run(session=session, run_id="no-such-run")

    assert missing is None
    assert run is not None
    assert (run.id, run.state, run.symbols, run.as_of) == ("r1", "PARTIAL", 2, TEST_AS_OF)
    assert [(s.stage, s.counts) for s in run.stages] == [
        ("ingest", {"SUCCESS": 1, "FAILED": 1}),
        ("process", {"SUCCESS": 1, "CANCELLED": 1}),
        ("predict", {}),
    ]
    assert [(f.symbol, f.stage, f.attempts, f.last_error) for f in run.failed] == [
        ("BBB", "ingest", 1, "source down")
    ]
    assert [(c.symbol, c.stage, c.notes) for c in run.cleaned] == [
        ("AAA", "ingest", ["negative price", "out of order"])
    ]


async def test_runs_are_paged_newest_first_with_ties_broken_by_id(database: Database) -> None:
    same_time = NOW - dt.timedelta(hours=1)
    await _add_runs(
        database,
        _run("r-old", state=RunState.SUCCESS, days_back=3),
        _run("r-b", state=RunState.FAILED, days_back=1, created_at=same_time),
        _run("r-a", state=RunState.SUCCESS, days_back=2, created_at=same_time),
        _run("r-new"),
    )
    async with database.session() as session:
        pages = []
        cursor = None
        while True:
            page = await list_runs(session=session, state=None, as_of=None, limit=2, cursor=cursor)
            pages.append([run.id for run in page.items])
            cursor = page.next_cursor
            if cursor is None:
                break
        succeeded = await list_runs(
            session=session, state=RunState.SUCCESS, as_of=None, limit=10, cursor=None
        )
        one_day = await list_runs(
            session=session,
            state=None,
            as_of=TEST_AS_OF - dt.timedelta(days=1),
            limit=10,
            cursor=None,
        )
        everything = await list_runs(session=session, state=None, as_of=None, limit=4, cursor=None)

    assert pages == [["r-new", "r-b"], ["r-a", "r-old"]]
    assert [run.id for run in succeeded.items] == ["r-a", "r-old"]
    assert [run.id for run in one_day.items] == ["r-b"]
    # A page that holds the last run says so: no cursor to an empty page.
    assert everything.next_cursor is None


def test_a_cursor_names_the_run_it_continues_after_in_any_time_zone() -> None:
    berlin = dt.timezone(dt.timedelta(hours=1))
    created = dt.datetime(2026, 11, 20, 22, 30, 0, 123456, tzinfo=berlin)
    run = Run(id="3f2a-run|with-bar", created_at=created)

    cursor = encode_run_cursor(run)

    assert "=" not in cursor
    assert decode_run_cursor(cursor) == (created, "3f2a-run|with-bar")
    assert decode_run_cursor(cursor)[0] == created.astimezone(dt.UTC)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "",
        base64.urlsafe_b64encode(b"audit:2026-11-20T00:00:00|r1").decode(),
        base64.urlsafe_b64encode(b"runs:yesterday|r1").decode(),
        base64.urlsafe_b64encode(b"runs:2026-11-20T00:00:00").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
async def test_a_cursor_this_api_did_not_make_is_refused(database: Database, cursor: str) -> None:
    with pytest.raises(ValueError, match="not a cursor this API returned"):
        decode_run_cursor(cursor)
    async with database.session() as session:
        with pytest.raises(ValueError, match="not a cursor"):
            await list_runs(session=session, state=None, as_of=None, limit=5, cursor=cursor)


async def test_idle_runs_are_running_runs_whose_run_and_tasks_all_changed_before_the_cutoff(
    database: Database,
) -> None:
    long_ago, lately = NOW - dt.timedelta(hours=2), NOW - dt.timedelta(minutes=1)
    stale = {"updated_at": long_ago}
    await _add_runs(
        database,
        _run("idle", updated_at=long_ago - dt.timedelta(hours=1)),
        _run("busy", days_back=1, updated_at=long_ago),
        _run("moved", days_back=2, updated_at=lately),
        _run("done", state=RunState.SUCCESS, days_back=3, updated_at=long_ago),
        _run("empty", days_back=4, updated_at=long_ago),
        tasks=(
            _task("idle", "AAA", Stage.INGEST, TaskState.RUNNING, **stale),
            _task("busy", "AAA", Stage.INGEST, TaskState.SUCCESS, **stale),
            _task("busy", "BBB", Stage.INGEST, TaskState.RUNNING, updated_at=lately),
            _task("moved", "AAA", Stage.INGEST, TaskState.RUNNING, **stale),
            _task("done", "AAA", Stage.INGEST, TaskState.SUCCESS, **stale),
        ),
    )
    async with database.session() as session:
        idle = await idle_runs(session, cutoff=NOW - dt.timedelta(minutes=30))

    assert [(run.id, changed) for run, changed in idle] == [("idle", long_ago)]


async def test_changing_state_is_compare_and_set_and_announced_in_the_same_transaction(
    database: Database,
) -> None:
    await _add_runs(database, _run("r1"), _run("r2", days_back=1))
    async with database.session() as stale:
        seen = await stale.get(Run, "r1")
        assert seen is not None
        async with database.session() as session:
            fresh = await session.get(Run, "r1")
            assert fresh is not None
            assert await change_state(
                session, source="orchestrator", run=fresh, target=RunState.CANCELLED
            )
            assert fresh.state == "CANCELLED"
            await session.commit()
        # The other replica still holds RUNNING: its move must not overwrite the cancellation.
        assert not await change_state(
            stale, source="orchestrator", run=seen, target=RunState.SUCCESS
        )
        assert seen.state == "RUNNING"
        await stale.commit()

    async with database.session() as session:
        stored = await session.get(Run, "r1")
        messages = list(await session.scalars(select(OutboxMessage)))
    assert stored is not None
    assert stored.state == "CANCELLED"
    assert stored.finished_at is not None
    [message] = messages
    envelope, payload = parse_event(message.value)
    assert envelope.run_id == "r1"
    assert payload == RunStateChanged(from_state="RUNNING", to_state="CANCELLED", as_of=TEST_AS_OF)


async def test_the_live_run_of_a_day_is_its_pending_or_running_one(database: Database) -> None:
    await _add_runs(
        database,
        _run("finished", state=RunState.FAILED),
        _run("live", state=RunState.PENDING),
        _run("yesterday", days_back=1),
    )
    async with database.session() as session:
        today = await live_run_id(session, as_of=TEST_AS_OF)
        before = await live_run_id(session, as_of=TEST_AS_OF - dt.timedelta(days=1))
        none = await live_run_id(session, as_of=TEST_AS_OF - dt.timedelta(days=2))

    assert (today, before, none) == ("live", "yesterday", None)


async def test_finished_symbols_count_predictions_and_each_failed_symbol_once(
    database: Database,
) -> None:
    await _add_runs(
        database,
        _run("r1"),
        tasks=(
            _task("r1", "AAA", Stage.PREDICT, TaskState.SUCCESS),
            _task("r1", "BBB", Stage.PREDICT, TaskState.SUCCESS),
            _task("r1", "CCC", Stage.INGEST, TaskState.FAILED),
            _task("r1", "CCC", Stage.PROCESS, TaskState.CANCELLED),
            _task("r1", "DDD", Stage.PREDICT, TaskState.CANCELLED),
            _task("r1", "EEE", Stage.PREDICT, TaskState.RUNNING),
        ),
    )
    async with database.session() as session:
        assert await finished_symbols(session, run_id="r1") == (2, 2)
        assert await finished_symbols(session, run_id="no-such-run") == (0, 0)


async def test_settleable_runs_are_running_runs_whose_every_symbol_predicted_or_failed(
    database: Database,
) -> None:
    ok, failed, pending = TaskState.SUCCESS, TaskState.FAILED, TaskState.PENDING

    def symbol(run_id: str, name: str, *states: TaskState) -> tuple[Task, ...]:
        return tuple(
            _task(run_id, name, stage, state) for stage, state in zip(Stage, states, strict=True)
        )

    await _add_runs(
        database,
        _run("all-predicted", days_back=0),
        _run("one-failed", days_back=1),
        _run("cancelled-task", days_back=2),
        _run("one-waiting", days_back=3),
        _run("one-running", days_back=4),
        _run("already-settled", state=RunState.PARTIAL, days_back=5),
        tasks=(
            *symbol("all-predicted", "AAA", ok, ok, ok),
            *symbol("all-predicted", "BBB", ok, ok, ok),
            *symbol("one-failed", "AAA", ok, ok, ok),
            # A failed ingest leaves its later stages PENDING: they wait on nothing.
            *symbol("one-failed", "BBB", failed, pending, pending),
            *symbol("cancelled-task", "AAA", ok, TaskState.CANCELLED, pending),
            *symbol("cancelled-task", "BBB", ok, ok, ok),
            *symbol("one-waiting", "AAA", ok, ok, ok),
            *symbol("one-waiting", "BBB", ok, ok, pending),
            *symbol("one-running", "AAA", ok, TaskState.RUNNING, pending),
            *symbol("one-running", "BBB", failed, pending, pending),
            *symbol("already-settled", "AAA", failed, pending, pending),
        ),
    )
    async with database.session() as session:
        ready = await settleable_runs(session)
        one = await settleable_runs(session, run_id="one-failed")
        busy = await settleable_runs(session, run_id="one-waiting")

    # Oldest first.
    assert ready == ["cancelled-task", "one-failed", "all-predicted"]
    assert (one, busy) == (["one-failed"], [])
