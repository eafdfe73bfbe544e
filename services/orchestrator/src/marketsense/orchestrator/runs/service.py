"""Runs, one at a time, in the caller's transaction: add, read, move, page through them."""

from __future__ import annotations

import base64
import datetime as dt

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from marketsense.common.api_models import CURSOR_INVALID
from marketsense.common.db.models import DAILY_RUN, LIVE_RUN_STATES, Run, Task
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, RunStateChanged
from marketsense.common.metrics import RUN_DURATION_SECONDS, RUNS_FINISHED
from marketsense.common.states import OPEN_TASK_STATES, RunState, Stage, TaskState, move_run
from marketsense.orchestrator.runs.schemas import (
    FailedSymbol,
    RunPage,
    RunRead,
    RunSummary,
    StageCounts,
    TaskNotes,
)
from marketsense.orchestrator.tasks.service import failed_tasks, stage_counts

_CURSOR_PREFIX = "runs:"

_FAILED_STATES = (TaskState.FAILED, TaskState.CANCELLED)
"""Task states that end their symbol without a prediction (SKIPPED tasks follow one of them)."""

_RUN_ID_CHARS = 36
"""Longest run id (a UUID)."""

RUN_CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
"""What a run cursor looks like: URL-safe base64 without padding."""


async def live_run_id(session: AsyncSession, *, as_of: dt.date) -> str | None:
    """The id of the day's PENDING or RUNNING daily run, if there is one (backfills hold no
    day)."""
    return await session.scalar(
        select(Run.id)
        .where(Run.as_of == as_of, Run.kind == DAILY_RUN, Run.state.in_(LIVE_RUN_STATES))
        .limit(1)
    )


def add_run(
    session: AsyncSession, *, run_id: str, as_of: dt.date, symbols: int, failure_threshold: float
) -> Run:
    """A new PENDING run."""
    run = Run(
        id=run_id,
        # Set here rather than by the database: microseconds keep runs in creation order.
        created_at=dt.datetime.now(dt.UTC),
        as_of=as_of,
        state=RunState.PENDING,
        symbols=symbols,
        failure_threshold=failure_threshold,
    )
    session.add(run)
    return run


async def change_state(session: AsyncSession, *, source: str, run: Run, target: RunState) -> bool:
    """Move a run from its current state to `target` (compare-and-set) and announce it in the same
    transaction; False when another replica moved it first."""
    current = RunState(run.state)
    if not await move_run(session, run_id=run.id, source={current}, target=target):
        return False
    # The row moved in the database; the loaded object follows without a second UPDATE.
    set_committed_value(run, "state", target.value)
    add_event(
        session,
        Envelope.wrap(
            RunStateChanged(from_state=current, to_state=target, as_of=run.as_of), run_id=run.id
        ),
        source=source,
    )
    return True


async def finished_symbols(session: AsyncSession, *, run_id: str) -> tuple[int, int]:
    """(symbols predicted, symbols with a failed or cancelled task) of a run."""
    predicted = await session.scalar(
        select(func.count()).where(
            Task.run_id == run_id, Task.stage == Stage.PREDICT, Task.state == TaskState.SUCCESS
        )
    )
    failed = await session.scalar(
        select(func.count(func.distinct(Task.symbol))).where(
            Task.run_id == run_id, Task.state.in_(_FAILED_STATES)
        )
    )
    return predicted or 0, failed or 0


def final_state(*, failed: int, total: int, threshold: float) -> RunState:
    """SUCCESS with no failure, PARTIAL up to the threshold share, FAILED beyond it or when no
    symbol predicted (whatever the threshold: PARTIAL means some predictions)."""
    if failed == 0:
        return RunState.SUCCESS
    if failed >= total:
        return RunState.FAILED
    return RunState.PARTIAL if failed / total <= threshold else RunState.FAILED


def observe_finished(state: RunState, created_at: dt.datetime) -> None:
    """Count a run reaching a final state and how long it took."""
    RUNS_FINISHED.labels(state.value).inc()
    RUN_DURATION_SECONDS.observe(max(0.0, (dt.datetime.now(dt.UTC) - created_at).total_seconds()))


async def failed_symbols(session: AsyncSession, *, run_id: str) -> list[FailedSymbol]:
    """Every FAILED task of a run with its stage, attempts and last error, by symbol."""
    return [
        FailedSymbol(symbol=t.symbol, stage=t.stage, attempts=t.attempts, last_error=t.last_error)
        for t in await failed_tasks(session, run_id=run_id)
    ]


async def read_run(*, session: AsyncSession, run_id: str) -> RunRead | None:
    """A run with task counts per stage and its failed symbols."""
    run = await session.get(Run, run_id)
    if run is None:
        return None
    counts = await stage_counts(session, run_id=run_id)
    noted = await session.scalars(
        select(Task)
        .where(Task.run_id == run_id, Task.notes.is_not(None))
        .order_by(Task.symbol, Task.stage)
    )
    return RunRead(
        id=run.id,
        as_of=run.as_of,
        kind=run.kind,
        start=run.start,
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
        items=[RunSummary.model_validate(r, from_attributes=True) for r in page],
        next_cursor=encode_run_cursor(page[-1]) if len(runs) > limit else None,
    )


async def settleable_runs(session: AsyncSession, *, run_id: str | None = None) -> list[str]:
    """RUNNING runs (or the one run `run_id`) whose every symbol has predicted or failed, oldest
    first.

    Told from the tasks alone: no PENDING or RUNNING task of a symbol without a FAILED or
    CANCELLED task is left. The search stops at a run's first such task, so a busy run costs
    one index probe (the index on run, stage and state).
    """
    waiting, failure = aliased(Task), aliased(Task)
    symbol_failed = exists().where(
        failure.run_id == waiting.run_id,
        failure.symbol == waiting.symbol,
        failure.state.in_(_FAILED_STATES),
    )
    symbol_waiting = exists().where(
        waiting.run_id == Run.id,
        # Every stage named, so the database walks the (run, stage, state) index by its prefix.
        waiting.stage.in_(list(Stage)),
        waiting.state.in_(sorted(OPEN_TASK_STATES)),
        ~symbol_failed,
    )
    query = select(Run.id).where(Run.state == RunState.RUNNING, ~symbol_waiting)
    if run_id is not None:
        query = query.where(Run.id == run_id)
    return list(await session.scalars(query.order_by(Run.created_at)))


async def idle_runs(session: AsyncSession, *, cutoff: dt.datetime) -> list[tuple[Run, dt.datetime]]:
    """RUNNING runs, and when they last changed, whose run and tasks have not changed since
    `cutoff`."""
    last_task_change = func.max(Task.updated_at)
    rows = await session.execute(
        select(Run, last_task_change)
        .join(Task, Task.run_id == Run.id)
        .where(Run.state == RunState.RUNNING)
        .group_by(Run.id)
    )
    idle = []
    for run, task_changed in rows:
        changed = max(run.updated_at, task_changed)
        if changed < cutoff:
            idle.append((run, changed))
    return idle


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
        created_text, run_id = text[len(_CURSOR_PREFIX) :].split("|", 1)
        created_at = dt.datetime.fromisoformat(created_text)
        # Only a time this API wrote: aware, and one the databases can compare in UTC.
        if created_at.tzinfo is None or len(run_id) > _RUN_ID_CHARS:
            raise ValueError(cursor)
        return created_at.astimezone(dt.UTC), run_id
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise ValueError(CURSOR_INVALID) from exc
