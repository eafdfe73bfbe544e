"""The pipeline state machine: every allowed transition, applied with compare-and-set."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import Run, Task


class Stage(StrEnum):
    """Stages every symbol goes through, in order."""

    INGEST = "ingest"
    PROCESS = "process"
    PREDICT = "predict"


class TaskState(StrEnum):
    """State of one (run, symbol, stage) task."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"
    """Never ran: its symbol failed at an earlier stage and its run ended."""


OPEN_TASK_STATES = frozenset({TaskState.PENDING, TaskState.RUNNING})
"""Task states that still have work ahead; every other state is final until an operator acts."""


class RunState(StrEnum):
    """State of a run."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # PENDING -> FAILED: a task left PENDING past its timeout (its event lost) is failed, then
    # re-queued under the attempt limit. PENDING -> SKIPPED: its run ended without it.
    TaskState.PENDING: frozenset(
        {TaskState.RUNNING, TaskState.FAILED, TaskState.CANCELLED, TaskState.SKIPPED}
    ),
    TaskState.RUNNING: frozenset(
        {TaskState.SUCCESS, TaskState.FAILED, TaskState.CANCELLED, TaskState.SKIPPED}
    ),
    # A retryable failure under the attempt limit goes back to PENDING after a back-off.
    TaskState.FAILED: frozenset({TaskState.PENDING, TaskState.CANCELLED}),
    TaskState.SUCCESS: frozenset(),
    TaskState.CANCELLED: frozenset(),
    # An operator retrying the failed stage of a symbol gives its later stages their turn again.
    TaskState.SKIPPED: frozenset({TaskState.PENDING}),
}

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.PENDING: frozenset({RunState.RUNNING, RunState.FAILED, RunState.CANCELLED}),
    RunState.RUNNING: frozenset(
        {RunState.SUCCESS, RunState.PARTIAL, RunState.FAILED, RunState.CANCELLED}
    ),
    # An operator may retry a run's failed tasks, which puts it back to work.
    RunState.PARTIAL: frozenset({RunState.RUNNING}),
    RunState.FAILED: frozenset({RunState.RUNNING}),
    RunState.SUCCESS: frozenset(),
    RunState.CANCELLED: frozenset(),
}

FINISHED_RUN_STATES = frozenset(
    {RunState.SUCCESS, RunState.PARTIAL, RunState.FAILED, RunState.CANCELLED}
)


class IllegalTransition(ValueError):
    """A transition the state machine does not allow."""


def check_task_transition(source: TaskState, target: TaskState) -> None:
    """Raise IllegalTransition unless a task may move from source to target."""
    if target not in TASK_TRANSITIONS[source]:
        raise IllegalTransition(f"task cannot move from {source} to {target}")


def check_run_transition(source: RunState, target: RunState) -> None:
    """Raise IllegalTransition unless a run may move from source to target."""
    if target not in RUN_TRANSITIONS[source]:
        raise IllegalTransition(f"run cannot move from {source} to {target}")


async def move_task(
    session: AsyncSession,
    *,
    run_id: str,
    symbol: str,
    stage: Stage,
    source: Iterable[TaskState],
    target: TaskState,
    error: str | None = None,
    count_attempt: bool = False,
    unchanged_since: dt.datetime | None = None,
) -> bool:
    """Move a task from one of `source` to `target` if it is still there (and, with
    `unchanged_since`, has not changed since then); True if it moved."""
    sources = frozenset(source)
    for state in sources:
        check_task_transition(state, target)
    values: dict[str, object] = {"state": target, "updated_at": _now()}
    if error is not None:
        values["last_error"] = error
    if count_attempt:
        values["attempts"] = Task.attempts + 1
    query = update(Task).where(
        Task.run_id == run_id,
        Task.symbol == symbol,
        Task.stage == stage,
        Task.state.in_(sorted(sources)),
    )
    if unchanged_since is not None:
        # A move whose target is also its source (PENDING re-sent) needs this to be
        # compare-and-set: a second replica then finds the row changed and leaves it.
        query = query.where(Task.updated_at < unchanged_since)
    result = await session.execute(
        query.values(values).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def move_tasks(
    session: AsyncSession,
    *,
    run_id: str,
    source: Iterable[TaskState],
    target: TaskState,
    symbol: str | None = None,
) -> int:
    """Move every task of a run (or of one of its symbols) that is in one of `source` to
    `target`; how many moved."""
    sources = frozenset(source)
    for state in sources:
        check_task_transition(state, target)
    query = update(Task).where(Task.run_id == run_id, Task.state.in_(sorted(sources)))
    if symbol is not None:
        query = query.where(Task.symbol == symbol)
    result = await session.execute(
        query.values(state=target, updated_at=_now()).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def move_run(
    session: AsyncSession, *, run_id: str, source: Iterable[RunState], target: RunState
) -> bool:
    """Move a run from one of `source` to `target` if it is still there; True if it moved."""
    sources = frozenset(source)
    for state in sources:
        check_run_transition(state, target)
    now = _now()
    values: dict[str, object] = {"state": target, "updated_at": now}
    values["finished_at"] = now if target in FINISHED_RUN_STATES else None
    result = await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.state.in_(sorted(sources)))
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
