"""Task rows of a run, in the caller's transaction: created with it, re-queued from what the run
recorded, cancelled or skipped with it, found overdue, counted."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.calendar import DEFAULT_EXCHANGE, exchange_calendar
from marketsense.common.db.models import LIVE_RUN_STATES, FeatureSet, RawObject, Run, Task
from marketsense.common.db.outbox import add_event
from marketsense.common.events import (
    Envelope,
    FeaturesReady,
    IngestRequested,
    Payload,
    RawDataReady,
)
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.metrics import TASK_RETRIES
from marketsense.common.states import (
    OPEN_TASK_STATES,
    RunState,
    Stage,
    TaskState,
    move_task,
    move_tasks,
)

OPEN_STATES = tuple(sorted(OPEN_TASK_STATES))
"""Task states that still have work ahead."""


class MissingInput(Exception):
    """A stage's input is not recorded, so its event cannot be rebuilt."""


def add_tasks(session: AsyncSession, *, run_id: str, symbols: list[str]) -> None:
    """A PENDING task per (symbol, stage) of a new run."""
    session.add_all(
        Task(run_id=run_id, symbol=s, stage=stage, state=TaskState.PENDING, attempts=0)
        for s in symbols
        for stage in Stage
    )


def queue_stage_input(
    session: AsyncSession, *, source: str, run_id: str, symbol: str, payload: Payload
) -> None:
    """Queue the event that makes a stage run for (run, symbol), in the caller's transaction."""
    add_event(session, Envelope.wrap(payload, run_id=run_id, symbol=symbol), source=source)


async def stage_input(
    session: AsyncSession, *, run: Run, symbol: str, stage: Stage, lookback_days: int
) -> Payload:
    """The event that makes `stage` run for (run, symbol), rebuilt from what the run recorded."""
    if stage == Stage.INGEST:
        return IngestRequested(as_of=run.as_of, start=run.start, lookback_days=lookback_days)
    if stage == Stage.PROCESS:
        raw = {
            r.kind: r
            for r in await session.scalars(
                select(RawObject).where(RawObject.run_id == run.id, RawObject.symbol == symbol)
            )
        }
        bars, texts = raw.get("bars"), raw.get("texts")
        if bars is None:
            raise MissingInput(f"no raw bars recorded for {symbol} in run {run.id}")
        return RawDataReady(
            as_of=run.as_of,
            bars=bars.ref(),
            rows=bars.rows,
            texts=None if texts is None else texts.ref(),
            text_items=0 if texts is None else texts.rows,
            start=run.start,
        )
    features = await session.scalar(
        select(FeatureSet).where(
            FeatureSet.run_id == run.id,
            FeatureSet.symbol == symbol,
            FeatureSet.feature_schema == FEATURE_SCHEMA,
        )
    )
    if features is None:
        raise MissingInput(f"no features recorded for {symbol} in run {run.id}")
    return FeaturesReady(
        as_of=run.as_of,
        feature_schema=features.feature_schema,
        features=features.ref(),
        start=run.start,
        rows=_feature_rows(run),
    )


def _feature_rows(run: Run) -> int:
    """Feature rows of a run's file: one for a daily run, one per session for a backfill."""
    if run.start is None:
        return 1
    return max(1, len(exchange_calendar(DEFAULT_EXCHANGE).sessions(run.start, run.as_of)))


async def requeue_task(
    session: AsyncSession, *, source: str, run: Run, task: Task, lookback_days: int, reason: str
) -> bool:
    """Put a FAILED task back to PENDING and queue its stage's input again; False if it moved on.

    The state change and the event commit together (outbox), so a retry is never half done.
    Raises MissingInput when the stage's input was never recorded.
    """
    stage = Stage(task.stage)
    payload = await stage_input(
        session, run=run, symbol=task.symbol, stage=stage, lookback_days=lookback_days
    )
    if not await move_task(
        session,
        run_id=run.id,
        symbol=task.symbol,
        stage=stage,
        source={TaskState.FAILED},
        target=TaskState.PENDING,
    ):
        return False
    queue_stage_input(session, source=source, run_id=run.id, symbol=task.symbol, payload=payload)
    TASK_RETRIES.labels(stage.value, reason).inc()
    return True


async def failed_tasks(session: AsyncSession, *, run_id: str) -> list[Task]:
    """Every FAILED task of a run, by symbol and stage."""
    return list(
        await session.scalars(
            select(Task)
            .where(Task.run_id == run_id, Task.state == TaskState.FAILED)
            .order_by(Task.symbol, Task.stage)
        )
    )


async def cancel_open_tasks(session: AsyncSession, *, run_id: str) -> int:
    """Cancel a run's PENDING and RUNNING tasks (handlers then cannot claim them); how many."""
    return await move_tasks(session, run_id=run_id, source=OPEN_STATES, target=TaskState.CANCELLED)


async def skip_open_tasks(session: AsyncSession, *, run_id: str) -> int:
    """Skip the PENDING and RUNNING tasks of a run that ended without them; how many.

    Only a symbol that failed at an earlier stage has any left when its run ends.
    """
    return await move_tasks(session, run_id=run_id, source=OPEN_STATES, target=TaskState.SKIPPED)


async def unskip_tasks(session: AsyncSession, *, run_id: str, symbol: str | None = None) -> int:
    """Put a run's (or one symbol's) SKIPPED tasks back to PENDING, for a retry of the stage
    they waited on; how many."""
    return await move_tasks(
        session, run_id=run_id, symbol=symbol, source={TaskState.SKIPPED}, target=TaskState.PENDING
    )


async def open_task_count(session: AsyncSession, *, run_id: str) -> int:
    """How many of a run's tasks are still PENDING or RUNNING."""
    count = await session.scalar(
        select(func.count()).where(Task.run_id == run_id, Task.state.in_(OPEN_STATES))
    )
    return count or 0


async def overdue_tasks(
    session: AsyncSession, *, cutoff: dt.datetime
) -> list[tuple[str, str, Stage]]:
    """(run, symbol, stage) of every task of a RUNNING run that has been RUNNING since `cutoff`."""
    rows = await session.execute(
        select(Task.run_id, Task.symbol, Task.stage)
        .join(Run, Run.id == Task.run_id)
        .where(
            Run.state == RunState.RUNNING,
            Task.state == TaskState.RUNNING,
            Task.updated_at < cutoff,
        )
    )
    return [(run_id, symbol, Stage(stage)) for run_id, symbol, stage in rows]


_PREVIOUS_STAGE = {Stage.PROCESS: Stage.INGEST, Stage.PREDICT: Stage.PROCESS}

_CHUNK = 500
"""Symbols per look-up of their previous stage: well below any driver's parameter limit."""


async def busy_stages(session: AsyncSession, *, since: dt.datetime) -> set[Stage]:
    """Stages with a task of a RUNNING run that changed since `since`: their consumers are
    moving through a queue."""
    rows = await session.scalars(
        select(Task.stage)
        .distinct()
        .join(Run, Run.id == Task.run_id)
        .where(Run.state == RunState.RUNNING, Task.updated_at >= since)
    )
    return {Stage(stage) for stage in rows}


async def stranded_tasks(
    session: AsyncSession, *, cutoff: dt.datetime
) -> list[tuple[str, str, Stage]]:
    """(run, symbol, stage) of every PENDING task of a RUNNING run whose event is presumed lost.

    A task is stranded when it and its input (the run's start for ingest, the previous stage's
    success otherwise) are older than `cutoff`, and no task of its stage has changed since:
    while a stage's consumers move through a long queue, its waiting tasks are not stranded.
    """
    busy = await busy_stages(session, since=cutoff)
    stranded: list[tuple[str, str, Stage]] = []
    for stage in Stage:
        if stage in busy:
            continue
        waiting = await session.execute(
            select(Task.run_id, Task.symbol)
            .join(Run, Run.id == Task.run_id)
            .where(
                Run.state == RunState.RUNNING,
                Run.updated_at < cutoff,
                Task.stage == stage,
                Task.state == TaskState.PENDING,
                Task.updated_at < cutoff,
            )
            .order_by(Task.run_id, Task.symbol)
        )
        candidates = [(run_id, symbol) for run_id, symbol in waiting]
        if stage in _PREVIOUS_STAGE:
            ready = await _succeeded_before(
                session, tasks=candidates, stage=_PREVIOUS_STAGE[stage], cutoff=cutoff
            )
            candidates = [task for task in candidates if task in ready]
        stranded += [(run_id, symbol, stage) for run_id, symbol in candidates]
    return stranded


async def _succeeded_before(
    session: AsyncSession, *, tasks: list[tuple[str, str]], stage: Stage, cutoff: dt.datetime
) -> set[tuple[str, str]]:
    """Which of the (run, symbol) pairs have `stage` SUCCESS since before `cutoff`.

    Looked up by run in chunks of symbols, by the (run, symbol, stage) key: a join here lets
    the planner walk every success of the run once per waiting task.
    """
    by_run: dict[str, list[str]] = {}
    for run_id, symbol in tasks:
        by_run.setdefault(run_id, []).append(symbol)
    found: set[tuple[str, str]] = set()
    for run_id, symbols in by_run.items():
        for start in range(0, len(symbols), _CHUNK):
            rows = await session.scalars(
                select(Task.symbol).where(
                    Task.run_id == run_id,
                    Task.symbol.in_(symbols[start : start + _CHUNK]),
                    Task.stage == stage,
                    Task.state == TaskState.SUCCESS,
                    Task.updated_at < cutoff,
                )
            )
            found.update((run_id, symbol) for symbol in rows)
    return found


async def live_task_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """Tasks of live runs by (stage, state)."""
    rows = await session.execute(
        select(Task.stage, Task.state, func.count())
        .join(Run, Run.id == Task.run_id)
        .where(Run.state.in_(LIVE_RUN_STATES))
        .group_by(Task.stage, Task.state)
    )
    return {(stage, state): n for stage, state, n in rows}


async def stage_counts(session: AsyncSession, *, run_id: str) -> dict[str, dict[str, int]]:
    """A run's tasks by stage, then state."""
    counts: dict[str, dict[str, int]] = {}
    rows = await session.execute(
        select(Task.stage, Task.state, func.count())
        .where(Task.run_id == run_id)
        .group_by(Task.stage, Task.state)
    )
    for stage, state, count in rows:
        counts.setdefault(stage, {})[state] = count
    return counts
