"""Orchestrator logic: create runs and their tasks, and settle a run once every symbol is done."""

from __future__ import annotations

import base64
import datetime as dt
import logging
import uuid
from collections import defaultdict

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import LIVE_RUN_STATES, Run, Task
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, IngestRequested, RunStateChanged
from marketsense.common.metrics import RUN_DURATION_SECONDS, RUNS_FINISHED
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState, move_run
from marketsense.orchestrator.alerting import raise_alert, run_ended_alert
from marketsense.orchestrator.audit import record_action
from marketsense.orchestrator.schemas import (
    FailedSymbol,
    RunPage,
    RunRead,
    RunSummary,
    StageCounts,
    TaskNotes,
)

log = logging.getLogger(__name__)


class RunConflict(Exception):
    """A run for the trading day is already PENDING or RUNNING."""

    def __init__(self, as_of: dt.date, run_id: str | None):
        self.as_of = as_of
        self.run_id = run_id
        super().__init__(
            f"run {run_id} for {as_of} is still live; wait for it to finish or cancel it"
            if run_id
            else f"another run for {as_of} is being started"
        )


async def live_run_id(session: AsyncSession, *, as_of: dt.date) -> str | None:
    """The id of the day's PENDING or RUNNING run, if there is one."""
    return await session.scalar(
        select(Run.id).where(Run.as_of == as_of, Run.state.in_(LIVE_RUN_STATES)).limit(1)
    )


async def create_run(
    *,
    runtime: Runtime,
    as_of: dt.date,
    symbols: list[str],
    lookback_days: int,
    failure_threshold: float,
    actor: str,
) -> str:
    """Create a run with a task per (symbol, stage), start it, and request every symbol's data.

    Raises RunConflict while the day has a live run: checked up front for a clear answer, and
    enforced by the database's partial unique index when two requests race.
    """
    try:
        return await _create_run(
            runtime=runtime,
            as_of=as_of,
            symbols=symbols,
            lookback_days=lookback_days,
            failure_threshold=failure_threshold,
            actor=actor,
        )
    except IntegrityError as exc:
        async with runtime.database.session() as session:
            live = await live_run_id(session, as_of=as_of)
        raise RunConflict(as_of, live) from exc


async def _create_run(
    *,
    runtime: Runtime,
    as_of: dt.date,
    symbols: list[str],
    lookback_days: int,
    failure_threshold: float,
    actor: str,
) -> str:
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        live = await live_run_id(session, as_of=as_of)
        if live is not None:
            raise RunConflict(as_of, live)
        session.add(
            Run(
                id=run_id,
                # Set here rather than by the database: microseconds keep runs in creation order.
                created_at=dt.datetime.now(dt.UTC),
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
        announce_run_state(session, runtime, run_id, as_of, RunState.PENDING, RunState.RUNNING)
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
        record_action(
            session,
            action="start",
            target=run_id,
            actor=actor,
            details={"as_of": as_of.isoformat(), "symbols": len(symbols)},
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
        announce_run_state(session, runtime, run_id, run.as_of, RunState.RUNNING, target)
        started, as_of, symbols = run.created_at, run.as_of, run.symbols
    log.info("run %s finished %s", run_id, target)
    observe_finished(target, started)
    if target in (RunState.PARTIAL, RunState.FAILED):
        async with runtime.database.session() as session:
            failed_tasks = await failed_symbols(session, run_id=run_id)
        await raise_alert(
            runtime,
            run_ended_alert(
                run_id=run_id, as_of=as_of, state=target, symbols=symbols, failed=failed_tasks
            ),
        )
    return target


def observe_finished(state: RunState, created_at: dt.datetime) -> None:
    """Count a run reaching a final state and how long it took."""
    RUNS_FINISHED.labels(state.value).inc()
    if created_at.tzinfo is None:  # SQLite hands back naive UTC datetimes
        created_at = created_at.replace(tzinfo=dt.UTC)
    RUN_DURATION_SECONDS.observe(max(0.0, (dt.datetime.now(dt.UTC) - created_at).total_seconds()))


async def failed_symbols(session: AsyncSession, *, run_id: str) -> list[FailedSymbol]:
    """Every FAILED task of a run with its stage, attempts and last error, by symbol."""
    failed = await session.scalars(
        select(Task)
        .where(Task.run_id == run_id, Task.state == TaskState.FAILED)
        .order_by(Task.symbol, Task.stage)
    )
    return [
        FailedSymbol(symbol=t.symbol, stage=t.stage, attempts=t.attempts, last_error=t.last_error)
        for t in failed
    ]


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
        failed=await failed_symbols(session, run_id=run_id),
        cleaned=[
            TaskNotes(symbol=t.symbol, stage=t.stage, notes=(t.notes or "").splitlines())
            for t in noted
        ],
    )


async def list_runs(
    *,
    session: AsyncSession,
    state: RunState | None,
    as_of: dt.date | None,
    limit: int,
    cursor: str | None,
) -> RunPage:
    """Runs newest first, optionally of one state or day, a page at a time (keyset pagination).

    Raises ValueError for a cursor this function did not make.
    """
    query = select(Run).order_by(Run.created_at.desc(), Run.id.desc()).limit(limit + 1)
    if state is not None:
        query = query.where(Run.state == state)
    if as_of is not None:
        query = query.where(Run.as_of == as_of)
    if cursor is not None:
        created_at, run_id = decode_run_cursor(cursor)
        query = query.where(
            or_(Run.created_at < created_at, and_(Run.created_at == created_at, Run.id < run_id))
        )
    runs = list(await session.scalars(query))
    page = runs[:limit]
    return RunPage(
        items=[
            RunSummary(
                id=r.id,
                as_of=r.as_of,
                state=r.state,
                symbols=r.symbols,
                created_at=r.created_at,
                finished_at=r.finished_at,
            )
            for r in page
        ],
        next_cursor=encode_run_cursor(page[-1]) if len(runs) > limit else None,
    )


_CURSOR_PREFIX = "runs:"


def encode_run_cursor(run: Run) -> str:
    """An opaque cursor that continues after `run` in newest-first order."""
    text = f"{_CURSOR_PREFIX}{run.created_at.isoformat()}|{run.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_run_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """The (created_at, id) a cursor continues after; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(cursor)
        created_at, run_id = text[len(_CURSOR_PREFIX) :].split("|", 1)
        return dt.datetime.fromisoformat(created_at), run_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor this API returned") from exc


def announce_run_state(
    session: AsyncSession,
    runtime: Runtime,
    run_id: str,
    as_of: dt.date,
    source: RunState,
    target: RunState,
) -> None:
    """Add a RunStateChanged event in the caller's transaction."""
    add_event(
        session,
        Envelope.wrap(
            RunStateChanged(from_state=source, to_state=target, as_of=as_of), run_id=run_id
        ),
        source=runtime.service,
    )
