"""Orchestrator logic: create runs and their tasks, and settle a run once every symbol is done."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import Run, Task
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, IngestRequested, RunStateChanged
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState, move_run
from marketsense.orchestrator.schemas import FailedSymbol, RunRead, StageCounts, TaskNotes

log = logging.getLogger(__name__)


async def create_run(
    *,
    runtime: Runtime,
    as_of: dt.date,
    symbols: list[str],
    lookback_days: int,
    failure_threshold: float,
) -> str:
    """Create a run with a task per (symbol, stage), start it, and request every symbol's data."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        session.add(
            Run(
                id=run_id,
                as_of=as_of,
                state=RunState.PENDING,
                symbols=len(symbols),
                failure_threshold=failure_threshold,
            )
        )
        await session.flush()
        session.add_all(
            Task(run_id=run_id, symbol=s, stage=stage, state=TaskState.PENDING, attempts=0)
            for s in symbols
            for stage in Stage
        )
        await session.flush()
        await move_run(session, run_id=run_id, source={RunState.PENDING}, target=RunState.RUNNING)
        _announce(session, runtime, run_id, as_of, RunState.PENDING, RunState.RUNNING)
        for symbol in symbols:
            add_event(
                session,
                Envelope.wrap(
                    IngestRequested(as_of=as_of, lookback_days=lookback_days),
                    run_id=run_id,
                    symbol=symbol,
                ),
                source=runtime.service,
            )
    log.info("run %s started for %s with %d symbols", run_id, as_of, len(symbols))
    return run_id


async def settle_run(*, runtime: Runtime, run_id: str) -> RunState | None:
    """Finish a RUNNING run once every symbol has predicted or failed; return its new state."""
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        if run is None or run.state != RunState.RUNNING:
            return None
        predicted = await session.scalar(
            select(func.count()).where(
                Task.run_id == run_id, Task.stage == Stage.PREDICT, Task.state == TaskState.SUCCESS
            )
        )
        failed = await session.scalar(
            select(func.count(func.distinct(Task.symbol))).where(
                Task.run_id == run_id, Task.state.in_([TaskState.FAILED, TaskState.CANCELLED])
            )
        )
        if (predicted or 0) + (failed or 0) < run.symbols:
            return None
        target = final_state(failed=failed or 0, total=run.symbols, threshold=run.failure_threshold)
        # Compare-and-set: when two replicas race, only one finishes the run.
        if not await move_run(session, run_id=run_id, source={RunState.RUNNING}, target=target):
            return None
        _announce(session, runtime, run_id, run.as_of, RunState.RUNNING, target)
    log.info("run %s finished %s", run_id, target)
    return target


def final_state(*, failed: int, total: int, threshold: float) -> RunState:
    """SUCCESS with no failure, PARTIAL up to the threshold share, FAILED beyond it."""
    if failed == 0:
        return RunState.SUCCESS
    return RunState.PARTIAL if failed / total <= threshold else RunState.FAILED


async def read_run(*, session: AsyncSession, run_id: str) -> RunRead | None:
    """A run with task counts per stage and its failed symbols."""
    run = await session.get(Run, run_id)
    if run is None:
        return None
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    rows = await session.execute(
        select(Task.stage, Task.state, func.count())
        .where(Task.run_id == run_id)
        .group_by(Task.stage, Task.state)
    )
    for stage, state, count in rows:
        counts[stage][state] = count
    failed = await session.scalars(
        select(Task)
        .where(Task.run_id == run_id, Task.state == TaskState.FAILED)
        .order_by(Task.symbol, Task.stage)
    )
    noted = await session.scalars(
        select(Task)
        .where(Task.run_id == run_id, Task.notes.is_not(None))
        .order_by(Task.symbol, Task.stage)
    )
    return RunRead(
        id=run.id,
        as_of=run.as_of,
        state=run.state,
        symbols=run.symbols,
        created_at=run.created_at,
        finished_at=run.finished_at,
        stages=[StageCounts(stage=s, counts=counts.get(s, {})) for s in Stage],
        failed=[
            FailedSymbol(
                symbol=t.symbol, stage=t.stage, attempts=t.attempts, last_error=t.last_error
            )
            for t in failed
        ],
        cleaned=[
            TaskNotes(symbol=t.symbol, stage=t.stage, notes=(t.notes or "").splitlines())
            for t in noted
        ],
    )


def _announce(
    session: AsyncSession,
    runtime: Runtime,
    run_id: str,
    as_of: dt.date,
    source: RunState,
    target: RunState,
) -> None:
    add_event(
        session,
        Envelope.wrap(
            RunStateChanged(from_state=source, to_state=target, as_of=as_of), run_id=run_id
        ),
        source=runtime.service,
    )
