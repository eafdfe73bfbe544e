"""Operator actions on a run: retry its failed tasks, or cancel it; both audited."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import FeatureSet, RawObject, Run, Task
from marketsense.common.db.outbox import add_event
from marketsense.common.events import (
    Envelope,
    FeaturesReady,
    IngestRequested,
    ObjectRef,
    Payload,
    RawDataReady,
)
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.metrics import TASK_RETRIES
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState, check_task_transition, move_run
from marketsense.orchestrator.audit import record_action
from marketsense.orchestrator.service import announce_run_state, observe_finished

log = logging.getLogger(__name__)

RETRYABLE_RUN_STATES = frozenset({RunState.RUNNING, RunState.PARTIAL, RunState.FAILED})
"""A run whose failed tasks an operator may retry."""


class ActionRefused(Exception):
    """The run is not in a state that allows the action."""


class NoSuchRun(LookupError):
    """No run has the id."""


class MissingInput(Exception):
    """A stage's input is not recorded, so its event cannot be rebuilt."""


async def stage_input(
    session: AsyncSession, *, run: Run, symbol: str, stage: Stage, lookback_days: int
) -> Payload:
    """The event that makes `stage` run for (run, symbol), rebuilt from what the run recorded."""
    if stage == Stage.INGEST:
        return IngestRequested(as_of=run.as_of, lookback_days=lookback_days)
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
            bars=ObjectRef(uri=bars.uri, sha256=bars.sha256, size=bars.size),
            rows=bars.rows,
            texts=None
            if texts is None
            else ObjectRef(uri=texts.uri, sha256=texts.sha256, size=texts.size),
            text_items=0 if texts is None else texts.rows,
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
        features=ObjectRef(uri=features.uri, sha256=features.sha256, size=features.size),
    )


async def requeue_task(
    session: AsyncSession,
    runtime: Runtime,
    *,
    run: Run,
    task: Task,
    lookback_days: int,
    reason: str,
) -> bool:
    """Put a FAILED task back to PENDING and queue its stage's input again; False if it moved on.

    The state change and the event commit together (outbox), so a retry is never half done.
    """
    stage = Stage(task.stage)
    check_task_transition(TaskState.FAILED, TaskState.PENDING)
    payload = await stage_input(
        session, run=run, symbol=task.symbol, stage=stage, lookback_days=lookback_days
    )
    moved = await session.execute(
        update(Task)
        .where(Task.id == task.id, Task.state == TaskState.FAILED)
        .values(state=TaskState.PENDING, updated_at=_now())
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        return False
    add_event(
        session,
        Envelope.wrap(payload, run_id=run.id, symbol=task.symbol),
        source=runtime.service,
    )
    TASK_RETRIES.labels(stage.value, reason).inc()
    return True


async def retry_run(
    *, runtime: Runtime, run_id: str, actor: str, reason: str, lookback_days: int
) -> int:
    """Re-queue every FAILED task of a run, putting the run back to RUNNING; return how many.

    Raises NoSuchRun, or ActionRefused when the run is not RUNNING, PARTIAL or FAILED or has no
    failed task.
    """
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        if run is None:
            raise NoSuchRun(run_id)
        state = RunState(run.state)
        if state not in RETRYABLE_RUN_STATES:
            raise ActionRefused(f"run {run_id} is {state}: only a RUNNING, PARTIAL or FAILED run")
        failed = list(
            await session.scalars(
                select(Task)
                .where(Task.run_id == run_id, Task.state == TaskState.FAILED)
                .order_by(Task.symbol, Task.stage)
            )
        )
        if not failed:
            raise ActionRefused(f"run {run_id} has no failed task to retry")
        if state != RunState.RUNNING:
            if not await move_run(session, run_id=run_id, source={state}, target=RunState.RUNNING):
                raise ActionRefused(f"run {run_id} changed state meanwhile; try again")
            announce_run_state(session, runtime, run_id, run.as_of, state, RunState.RUNNING)
        requeued: list[str] = []
        for task in failed:
            try:
                if await requeue_task(
                    session,
                    runtime,
                    run=run,
                    task=task,
                    lookback_days=lookback_days,
                    reason="operator",
                ):
                    requeued.append(f"{task.symbol}/{task.stage}")
            except MissingInput as exc:
                raise ActionRefused(str(exc)) from exc
        record_action(
            session,
            action="retry",
            target=run_id,
            actor=actor,
            reason=reason,
            details={"tasks": requeued, "from_state": state.value},
        )
    log.info("run %s: %s re-queued %d failed tasks", run_id, actor, len(requeued))
    return len(requeued)


async def cancel_run(*, runtime: Runtime, run_id: str, actor: str, reason: str) -> int:
    """Cancel a PENDING or RUNNING run and its unfinished tasks; return how many tasks.

    Handlers skip cancelled tasks (they cannot be claimed). Raises NoSuchRun or ActionRefused.
    """
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        if run is None:
            raise NoSuchRun(run_id)
        state = RunState(run.state)
        if state not in (RunState.PENDING, RunState.RUNNING):
            raise ActionRefused(f"run {run_id} is {state}: only a PENDING or RUNNING run")
        if not await move_run(session, run_id=run_id, source={state}, target=RunState.CANCELLED):
            raise ActionRefused(f"run {run_id} changed state meanwhile; try again")
        for source in (TaskState.PENDING, TaskState.RUNNING):
            check_task_transition(source, TaskState.CANCELLED)
        result = await session.execute(
            update(Task)
            .where(
                Task.run_id == run_id,
                Task.state.in_([TaskState.PENDING, TaskState.RUNNING]),
            )
            .values(state=TaskState.CANCELLED, updated_at=_now())
            .execution_options(synchronize_session=False)
        )
        cancelled = int(result.rowcount)  # type: ignore[attr-defined]
        announce_run_state(session, runtime, run_id, run.as_of, state, RunState.CANCELLED)
        record_action(
            session,
            action="cancel",
            target=run_id,
            actor=actor,
            reason=reason,
            details={"tasks": cancelled, "from_state": state.value},
        )
        created_at = run.created_at
    observe_finished(RunState.CANCELLED, created_at)
    log.info("run %s cancelled by %s (%d tasks)", run_id, actor, cancelled)
    return cancelled


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
