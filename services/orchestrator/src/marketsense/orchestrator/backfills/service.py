"""Backfill runs in the caller's transaction: their range, request key, tasks to send again, and
what they wrote."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.calendar import ExchangeCalendar
from marketsense.common.db.models import BACKFILL_RUN, Prediction, Run, Task
from marketsense.common.states import RunState, Stage, TaskState

MAX_SESSIONS = 5000
"""Most trading sessions one backfill may cover: about twenty years."""

_PREVIOUS_STAGE = {Stage.PROCESS: Stage.INGEST, Stage.PREDICT: Stage.PROCESS}


class EmptyRange(ValueError):
    """The range holds no trading session, or more than one backfill may cover."""


@dataclass(frozen=True)
class SessionRange:
    """The trading sessions a backfill covers, and how the requested days were read."""

    start: dt.date
    """First session."""
    end: dt.date
    """Last session."""
    sessions: int
    """Sessions from `start` to `end`."""
    notes: list[str] = field(default_factory=list)
    """A requested day that was no session, and where the range now starts or ends."""


def session_range(calendar: ExchangeCalendar, *, start: dt.date, end: dt.date) -> SessionRange:
    """The sessions from `start` to `end`, a day that is no session moved inward, with a note.

    Raises EmptyRange when no session is left or more than MAX_SESSIONS are.
    """
    sessions = calendar.sessions(start, end)
    if not sessions:
        raise EmptyRange(
            f"no {calendar.name} trading session from {start} to {end}; "
            f"the next one is {calendar.next_session(end)}"
        )
    if len(sessions) > MAX_SESSIONS:
        raise EmptyRange(
            f"{len(sessions)} trading sessions from {start} to {end}: a backfill covers at most "
            f"{MAX_SESSIONS}; split the range"
        )
    notes = []
    if sessions[0] != start:
        notes.append(
            f"start {start} is no {calendar.name} trading session: starting on {sessions[0]}"
        )
    if sessions[-1] != end:
        notes.append(f"end {end} is no {calendar.name} trading session: ending on {sessions[-1]}")
    return SessionRange(start=sessions[0], end=sessions[-1], sessions=len(sessions), notes=notes)


def request_key(*, start: dt.date, end: dt.date, symbols: Collection[str]) -> str:
    """The sha256 that names a backfill request: its sessions and its symbols, in any order."""
    text = f"{start.isoformat()}|{end.isoformat()}|{','.join(sorted(symbols))}"
    return hashlib.sha256(text.encode()).hexdigest()


async def latest_backfill(session: AsyncSession, *, key: str) -> Run | None:
    """The newest backfill run of a request that was not cancelled, if there is one."""
    return await session.scalar(
        select(Run)
        .where(
            Run.request_key == key,
            Run.kind == BACKFILL_RUN,
            Run.state != RunState.CANCELLED,
        )
        .order_by(Run.created_at.desc())
        .limit(1)
    )


async def backfill_run(session: AsyncSession, *, run_id: str) -> Run | None:
    """A backfill run by id; None for a daily run or no run."""
    run = await session.get(Run, run_id)
    return run if run is not None and run.kind == BACKFILL_RUN else None


async def prediction_count(session: AsyncSession, *, run_id: str) -> int:
    """How many predictions a run has written."""
    count = await session.scalar(select(func.count()).where(Prediction.run_id == run_id))
    return count or 0


async def ready_open_tasks(
    session: AsyncSession, *, run_id: str, states: Collection[TaskState]
) -> list[Task]:
    """A run's tasks in `states` whose input is there: every ingest task, and a later stage's
    task once its symbol's previous stage succeeded; by symbol and stage."""
    tasks = list(
        await session.scalars(
            select(Task)
            .where(Task.run_id == run_id, Task.state.in_(sorted(states)))
            .order_by(Task.symbol, Task.stage)
        )
    )
    succeeded = {
        (symbol, stage)
        for symbol, stage in await session.execute(
            select(Task.symbol, Task.stage).where(
                Task.run_id == run_id, Task.state == TaskState.SUCCESS
            )
        )
    }
    return [
        task
        for task in tasks
        if Stage(task.stage) not in _PREVIOUS_STAGE
        or (task.symbol, _PREVIOUS_STAGE[Stage(task.stage)].value) in succeeded
    ]
