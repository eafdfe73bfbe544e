"""What starts a backfill, or finds the one a request already started and moves it on: each flow
owns its transaction and reuses the run flows for retries and settling."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from marketsense.common.db.models import BACKFILL_RUN, Run
from marketsense.common.events import IngestRequested
from marketsense.common.metrics import TASK_RETRIES
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.orchestrator.audit.service import record_action
from marketsense.orchestrator.backfills.service import (
    SessionRange,
    latest_backfill,
    ready_open_tasks,
    request_key,
)
from marketsense.orchestrator.runs.flows import ActionRefused, retry_run
from marketsense.orchestrator.runs.service import add_run, change_state
from marketsense.orchestrator.tasks.service import (
    MissingInput,
    add_tasks,
    queue_stage_input,
    stage_input,
)

log = logging.getLogger(__name__)

WAITING = frozenset({TaskState.PENDING})
"""Tasks a repeated request sends again by default: their events may have been lost."""


@dataclass(frozen=True)
class BackfillStarted:
    """The run a backfill request started or found, and what the request did to it."""

    run_id: str
    created: bool
    """True when the request started a new run; False when it found the request's run."""
    requeued: int
    """Tasks sent again: failed ones retried, or waiting ones whose events may be lost."""


async def request_backfill(
    *,
    runtime: Runtime,
    sessions: SessionRange,
    symbols: list[str],
    lookback_days: int,
    failure_threshold: float,
    actor: str,
    reason: str = "",
    resend: Collection[TaskState] = WAITING,
) -> BackfillStarted:
    """Start the backfill of `symbols` over `sessions`, or move on the run the same request
    started: nothing for a SUCCESS run, a retry of the failed tasks of a PARTIAL or FAILED one,
    the events of its `resend` tasks sent again for a live one (RUNNING too, for a process that
    knows their worker died with it). A cancelled run does not count: the request starts anew.
    """
    key = request_key(start=sessions.start, end=sessions.end, symbols=symbols)
    async with runtime.database.session() as session:
        existing = await latest_backfill(session, key=key)
        found = None if existing is None else (existing.id, RunState(existing.state))
    if found is None:
        try:
            run_id = await _start(
                runtime=runtime,
                key=key,
                sessions=sessions,
                symbols=symbols,
                lookback_days=lookback_days,
                failure_threshold=failure_threshold,
                actor=actor,
                reason=reason,
            )
            return BackfillStarted(run_id=run_id, created=True, requeued=0)
        except IntegrityError:
            # The same request, racing this one, started the run first: that run is the answer.
            async with runtime.database.session() as session:
                raced = await latest_backfill(session, key=key)
            if raced is None:
                raise
            return BackfillStarted(run_id=raced.id, created=False, requeued=0)
    run_id, state = found
    requeued = 0
    if state in (RunState.PARTIAL, RunState.FAILED):
        try:
            requeued = await retry_run(
                runtime=runtime,
                run_id=run_id,
                actor=actor,
                reason=reason or "backfill requested again",
                lookback_days=lookback_days,
            )
        except ActionRefused as exc:
            log.info("backfill %s requested again; nothing to retry: %s", run_id, exc)
    elif state in (RunState.PENDING, RunState.RUNNING):
        requeued = await resend_open_tasks(
            runtime=runtime, run_id=run_id, states=resend, lookback_days=lookback_days
        )
    return BackfillStarted(run_id=run_id, created=False, requeued=requeued)


async def _start(
    *,
    runtime: Runtime,
    key: str,
    sessions: SessionRange,
    symbols: list[str],
    lookback_days: int,
    failure_threshold: float,
    actor: str,
    reason: str,
) -> str:
    """Create a RUNNING backfill run with its tasks and request every symbol's whole range."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        run = add_run(
            session,
            run_id=run_id,
            as_of=sessions.end,
            symbols=len(symbols),
            failure_threshold=failure_threshold,
        )
        run.kind, run.start, run.request_key = BACKFILL_RUN, sessions.start, key
        await session.flush()
        add_tasks(session, run_id=run_id, symbols=symbols)
        await session.flush()
        await change_state(session, source=runtime.service, run=run, target=RunState.RUNNING)
        request = IngestRequested(
            as_of=sessions.end, start=sessions.start, lookback_days=lookback_days
        )
        for symbol in symbols:
            queue_stage_input(
                session, source=runtime.service, run_id=run_id, symbol=symbol, payload=request
            )
        record_action(
            session,
            action="backfill",
            target=run_id,
            actor=actor,
            reason=reason,
            details={
                "start": sessions.start.isoformat(),
                "end": sessions.end.isoformat(),
                "sessions": sessions.sessions,
                "symbols": len(symbols),
            },
        )
    log.info(
        "backfill %s started for %s to %s with %d symbols",
        run_id,
        sessions.start,
        sessions.end,
        len(symbols),
    )
    return run_id


async def resend_open_tasks(
    *, runtime: Runtime, run_id: str, states: Collection[TaskState], lookback_days: int
) -> int:
    """Send again the input event of every task of a live run in `states` whose input is there;
    how many. A handler that finds its task RUNNING takes the event as a redelivery and redoes
    the work, and outputs have deterministic keys, so a second copy writes nothing twice."""
    sent = 0
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        if run is None or run.state not in (RunState.PENDING, RunState.RUNNING):
            return 0
        for task in await ready_open_tasks(session, run_id=run_id, states=states):
            stage = Stage(task.stage)
            try:
                payload = await stage_input(
                    session, run=run, symbol=task.symbol, stage=stage, lookback_days=lookback_days
                )
            except MissingInput as exc:
                log.warning("cannot send %s of %s again: %s", stage, task.symbol, exc)
                continue
            queue_stage_input(
                session, source=runtime.service, run_id=run_id, symbol=task.symbol, payload=payload
            )
            TASK_RETRIES.labels(stage.value, "resume").inc()
            sent += 1
    log.info("run %s: sent %d waiting tasks again", run_id, sent)
    return sent
