"""The task and run state machines, applied with compare-and-set on real rows (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import uuid
from collections.abc import Iterable, Set
from enum import StrEnum

import pytest
from _pytest.mark import ParameterSet
from sqlalchemy import select, text

from marketsense.common.db.engine import Database
from marketsense.common.db.models import Run, Task
from marketsense.common.states import (
    FINISHED_RUN_STATES,
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    IllegalTransition,
    RunState,
    Stage,
    TaskState,
    move_run,
    move_task,
    move_tasks,
)

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

ALLOWED_TASK_MOVES = {
    (TaskState.PENDING, TaskState.RUNNING),
    (TaskState.PENDING, TaskState.FAILED),
    (TaskState.PENDING, TaskState.CANCELLED),
    (TaskState.PENDING, TaskState.SKIPPED),
    (TaskState.RUNNING, TaskState.SUCCESS),
    (TaskState.RUNNING, TaskState.FAILED),
    (TaskState.RUNNING, TaskState.CANCELLED),
    (TaskState.RUNNING, TaskState.SKIPPED),
    (TaskState.FAILED, TaskState.PENDING),
    (TaskState.FAILED, TaskState.CANCELLED),
    (TaskState.SKIPPED, TaskState.PENDING),
}
ALLOWED_RUN_MOVES = {
    (RunState.PENDING, RunState.RUNNING),
    (RunState.PENDING, RunState.FAILED),
    (RunState.PENDING, RunState.CANCELLED),
    (RunState.RUNNING, RunState.SUCCESS),
    (RunState.RUNNING, RunState.PARTIAL),
    (RunState.RUNNING, RunState.FAILED),
    (RunState.RUNNING, RunState.CANCELLED),
    (RunState.PARTIAL, RunState.RUNNING),
    (RunState.FAILED, RunState.RUNNING),
}


def _pairs(
    states: Iterable[StrEnum], allowed_moves: Set[tuple[StrEnum, StrEnum]], *, allowed: bool
) -> list[ParameterSet]:
    """Every (source, target) pair of a state enum that is (or is not) an allowed move."""
    return [
        pytest.param(source, target, id=f"{source}->{target}")
        for source, target in itertools.product(states, repeat=2)
        if ((source, target) in allowed_moves) == allowed
    ]


async def _make_run(database: Database, *, state: RunState = RunState.RUNNING) -> str:
    run_id = str(uuid.uuid4())
    async with database.session() as session:
        session.add(
            Run(
                id=run_id,
                as_of=dt.date(2026, 11, 20),
                state=state,
                symbols=2,
                updated_at=LONG_AGO,
            )
        )
        await session.commit()
    return run_id


async def _make_task(
    database: Database, run_id: str, *, state: TaskState, symbol: str = "AAA"
) -> None:
    async with database.session() as session:
        session.add(
            Task(
                run_id=run_id,
                symbol=symbol,
                stage=Stage.PROCESS,
                state=state,
                attempts=0,
                updated_at=LONG_AGO,
            )
        )
        await session.commit()


async def _task(database: Database, run_id: str, symbol: str = "AAA") -> Task:
    async with database.session() as session:
        task = await session.scalar(
            select(Task).where(
                Task.run_id == run_id, Task.symbol == symbol, Task.stage == Stage.PROCESS
            )
        )
    assert task is not None
    return task


async def _run(database: Database, run_id: str) -> Run:
    async with database.session() as session:
        run = await session.get(Run, run_id)
    assert run is not None
    return run


def _after_long_ago(value: dt.datetime) -> bool:
    # SQLite hands timestamps back without a zone; they are stored in UTC.
    return value.replace(tzinfo=dt.UTC) > LONG_AGO


def test_the_transition_tables_are_the_documented_ones() -> None:
    assert {(s, t) for s, targets in TASK_TRANSITIONS.items() for t in targets} == (
        ALLOWED_TASK_MOVES
    )
    assert {(s, t) for s, targets in RUN_TRANSITIONS.items() for t in targets} == (
        ALLOWED_RUN_MOVES
    )


@pytest.mark.parametrize(("source", "target"), _pairs(TaskState, ALLOWED_TASK_MOVES, allowed=True))
async def test_allowed_task_move_changes_the_row(
    database: Database, source: TaskState, target: TaskState
) -> None:
    run_id = await _make_run(database)
    await _make_task(database, run_id, state=source)

    async with database.session() as session:
        moved = await move_task(
            session,
            run_id=run_id,
            symbol="AAA",
            stage=Stage.PROCESS,
            source={source},
            target=target,
            error="why it moved",
            count_attempt=True,
        )
        await session.commit()

    assert moved is True
    task = await _task(database, run_id)
    assert task.state == target
    assert task.last_error == "why it moved"
    assert task.attempts == 1
    assert _after_long_ago(task.updated_at)


@pytest.mark.parametrize(("source", "target"), _pairs(TaskState, ALLOWED_TASK_MOVES, allowed=False))
async def test_forbidden_task_move_raises_and_leaves_the_row(
    database: Database, source: TaskState, target: TaskState
) -> None:
    run_id = await _make_run(database)
    await _make_task(database, run_id, state=source)

    async with database.session() as session:
        with pytest.raises(IllegalTransition, match=f"task cannot move from {source} to {target}"):
            await move_task(
                session,
                run_id=run_id,
                symbol="AAA",
                stage=Stage.PROCESS,
                source={source},
                target=target,
                count_attempt=True,
            )
        await session.commit()

    task = await _task(database, run_id)
    assert (task.state, task.attempts, task.last_error) == (source, 0, None)
    assert not _after_long_ago(task.updated_at)


@pytest.mark.parametrize(("source", "target"), _pairs(RunState, ALLOWED_RUN_MOVES, allowed=True))
async def test_allowed_run_move_changes_the_row(
    database: Database, source: RunState, target: RunState
) -> None:
    run_id = await _make_run(database, state=source)

    async with database.session() as session:
        moved = await move_run(session, run_id=run_id, source={source}, target=target)
        await session.commit()

    assert moved is True
    run = await _run(database, run_id)
    assert run.state == target
    assert _after_long_ago(run.updated_at)
    assert (run.finished_at is not None) == (target in FINISHED_RUN_STATES)


@pytest.mark.parametrize(("source", "target"), _pairs(RunState, ALLOWED_RUN_MOVES, allowed=False))
async def test_forbidden_run_move_raises_and_leaves_the_row(
    database: Database, source: RunState, target: RunState
) -> None:
    run_id = await _make_run(database, state=source)

    async with database.session() as session:
        with pytest.raises(IllegalTransition, match=f"run cannot move from {source} to {target}"):
            await move_run(session, run_id=run_id, source={source}, target=target)
        await session.commit()

    run = await _run(database, run_id)
    assert (run.state, run.finished_at) == (source, None)
    assert not _after_long_ago(run.updated_at)


async def test_task_move_with_one_forbidden_source_among_several_raises(
    database: Database,
) -> None:
    run_id = await _make_run(database)
    await _make_task(database, run_id, state=TaskState.PENDING)

    async with database.session() as session:
        with pytest.raises(IllegalTransition):
            await move_task(
                session,
                run_id=run_id,
                symbol="AAA",
                stage=Stage.PROCESS,
                source={TaskState.PENDING, TaskState.SUCCESS},
                target=TaskState.RUNNING,
            )
        await session.commit()

    assert (await _task(database, run_id)).state == TaskState.PENDING


async def test_task_move_whose_expected_source_no_longer_matches_returns_false(
    database: Database,
) -> None:
    run_id = await _make_run(database)
    await _make_task(database, run_id, state=TaskState.SUCCESS)

    async with database.session() as session:
        moved = await move_task(
            session,
            run_id=run_id,
            symbol="AAA",
            stage=Stage.PROCESS,
            source={TaskState.RUNNING},
            target=TaskState.FAILED,
            error="late failure",
            count_attempt=True,
        )
        await session.commit()

    assert moved is False
    task = await _task(database, run_id)
    assert (task.state, task.attempts, task.last_error) == (TaskState.SUCCESS, 0, None)
    assert not _after_long_ago(task.updated_at)


async def test_task_move_guarded_by_its_last_change_leaves_a_task_changed_since(
    database: Database,
) -> None:
    run_id = await _make_run(database)
    await _make_task(database, run_id, state=TaskState.PENDING)

    async def resend() -> bool:
        # PENDING -> FAILED -> PENDING, as a replica re-sending a lost event does.
        async with database.session() as session:
            moved = await move_task(
                session,
                run_id=run_id,
                symbol="AAA",
                stage=Stage.PROCESS,
                source={TaskState.PENDING},
                target=TaskState.FAILED,
                count_attempt=True,
                unchanged_since=LONG_AGO + dt.timedelta(days=1),
            )
            if moved:
                await move_task(
                    session,
                    run_id=run_id,
                    symbol="AAA",
                    stage=Stage.PROCESS,
                    source={TaskState.FAILED},
                    target=TaskState.PENDING,
                )
            await session.commit()
        return moved

    assert [await resend(), await resend()] == [True, False]
    task = await _task(database, run_id)
    assert (task.state, task.attempts) == (TaskState.PENDING, 1)


async def test_moving_a_runs_tasks_may_keep_to_one_symbol(database: Database) -> None:
    run_id = await _make_run(database)
    await _make_task(database, run_id, state=TaskState.SKIPPED, symbol="AAA")
    await _make_task(database, run_id, state=TaskState.SKIPPED, symbol="BBB")

    async with database.session() as session:
        moved = await move_tasks(
            session,
            run_id=run_id,
            symbol="AAA",
            source={TaskState.SKIPPED},
            target=TaskState.PENDING,
        )
        await session.commit()

    assert moved == 1
    assert (await _task(database, run_id, "AAA")).state == TaskState.PENDING
    assert (await _task(database, run_id, "BBB")).state == TaskState.SKIPPED


async def test_task_move_touches_only_its_own_task(database: Database) -> None:
    run_id = await _make_run(database)
    await _make_task(database, run_id, state=TaskState.PENDING, symbol="AAA")
    await _make_task(database, run_id, state=TaskState.PENDING, symbol="BBB")

    async with database.session() as session:
        assert await move_task(
            session,
            run_id=run_id,
            symbol="AAA",
            stage=Stage.PROCESS,
            source={TaskState.PENDING},
            target=TaskState.RUNNING,
        )
        await session.commit()

    assert (await _task(database, run_id, "AAA")).state == TaskState.RUNNING
    assert (await _task(database, run_id, "BBB")).state == TaskState.PENDING


async def test_task_move_of_a_missing_task_returns_false(database: Database) -> None:
    run_id = await _make_run(database)

    async with database.session() as session:
        moved = await move_task(
            session,
            run_id=run_id,
            symbol="NOPE",
            stage=Stage.PROCESS,
            source={TaskState.PENDING},
            target=TaskState.RUNNING,
        )

    assert moved is False


async def test_run_move_whose_expected_source_no_longer_matches_returns_false(
    database: Database,
) -> None:
    run_id = await _make_run(database, state=RunState.CANCELLED)

    async with database.session() as session:
        moved = await move_run(
            session, run_id=run_id, source={RunState.RUNNING}, target=RunState.SUCCESS
        )
        await session.commit()

    assert moved is False
    run = await _run(database, run_id)
    assert (run.state, run.finished_at) == (RunState.CANCELLED, None)


async def _lock_waiters(database: Database) -> int:
    async with database.engine.connect() as conn:
        waiting = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


async def test_two_concurrent_claims_of_a_pending_task_have_exactly_one_winner(
    database: Database,
) -> None:
    run_id = await _make_run(database)
    await _make_task(database, run_id, state=TaskState.PENDING)
    first_moved = asyncio.Event()
    may_commit = asyncio.Event()

    async def claim(*, first: bool) -> bool:
        async with database.session() as session:
            if not first:
                await first_moved.wait()
            moved = await move_task(
                session,
                run_id=run_id,
                symbol="AAA",
                stage=Stage.PROCESS,
                source={TaskState.PENDING},
                target=TaskState.RUNNING,
                count_attempt=True,
            )
            if first:
                first_moved.set()
                await may_commit.wait()
            await session.commit()
            return moved

    first = asyncio.create_task(claim(first=True))
    second = asyncio.create_task(claim(first=False))
    await first_moved.wait()
    if not database.is_sqlite:
        # The second UPDATE must be blocked on the first one's row lock before the first
        # commits; otherwise this would only test two claims one after the other.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while await _lock_waiters(database) < 1:
            assert loop.time() < deadline, "the second claim never waited for the first"
            await asyncio.sleep(0.02)
    else:
        # SQLite shows no lock waits; give the second claim time to reach the database lock.
        await asyncio.sleep(0.2)
    may_commit.set()
    results = sorted([await first, await second])

    assert results == [False, True]
    task = await _task(database, run_id)
    assert (task.state, task.attempts) == (TaskState.RUNNING, 1)
