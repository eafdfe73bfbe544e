"""What happens to a task whose worker or event was lost: failed, then re-queued or failed for
good."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select

from marketsense.common.db.models import Run, Task
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState, move_task
from marketsense.common.tasks import announce_task_failed
from marketsense.orchestrator.tasks.service import MissingInput, requeue_task

log = logging.getLogger(__name__)


async def time_out_task(
    *,
    runtime: Runtime,
    run_id: str,
    symbol: str,
    stage: Stage,
    max_attempts: int,
    lookback_days: int,
    stranded_in: TaskState = TaskState.RUNNING,
    unchanged_since: dt.datetime | None = None,
) -> bool | None:
    """Fail a task still RUNNING (or PENDING) past its timeout, and re-queue it under the attempt
    limit; True if it failed for good (its run may now settle), False if re-queued, None if it
    had moved on meanwhile.

    A PENDING task was never picked up (its event or its claim was lost): re-sending its event
    counts as an attempt, so a task whose events keep getting lost fails in the end. Its move is
    guarded by `unchanged_since`, so two replicas reaping at once re-send it once.
    """
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        task = await session.scalar(
            select(Task).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
        )
        if run is None or task is None:
            return None
        # RUNNING (or PENDING) -> FAILED -> PENDING: state-machine transitions, in one transaction.
        if not await move_task(
            session,
            run_id=run_id,
            symbol=symbol,
            stage=stage,
            source={stranded_in},
            target=TaskState.FAILED,
            count_attempt=stranded_in == TaskState.PENDING,
            unchanged_since=unchanged_since,
        ):
            return None
        await session.refresh(task)
        message = (
            f"timed out after {task.attempts} attempts"
            if stranded_in == TaskState.RUNNING
            else f"not picked up in time after {task.attempts} attempts"
        )
        task.last_error = message
        requeued = False
        if task.attempts < max_attempts:
            try:
                requeued = await requeue_task(
                    session,
                    source=runtime.service,
                    run=run,
                    task=task,
                    lookback_days=lookback_days,
                    reason="timeout",
                )
            except MissingInput as exc:
                message = f"{message}; cannot re-queue: {exc}"
                task.last_error = message
        if not requeued:
            announce_task_failed(
                session,
                source=runtime.service,
                run_id=run_id,
                symbol=symbol,
                stage=stage,
                error=message,
                retryable=False,
                attempts=task.attempts,
            )
    log.warning(
        "%s %s task of %s in run %s timed out after %d attempts: %s",
        stranded_in,
        stage,
        symbol,
        run_id,
        task.attempts,
        "re-queued" if requeued else "failed",
    )
    return not requeued
