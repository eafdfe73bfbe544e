"""What happens to a task whose worker was lost: failed, then re-queued or failed for good."""

from __future__ import annotations

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
) -> bool | None:
    """Fail a task that is still RUNNING past its timeout, and re-queue it under the attempt
    limit; True if it failed for good (its run may now settle), False if re-queued, None if it
    had moved on meanwhile."""
    async with runtime.transaction() as session:
        run = await session.get(Run, run_id)
        task = await session.scalar(
            select(Task).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
        )
        if run is None or task is None:
            return None
        message = f"timed out after {task.attempts} attempts"
        # RUNNING -> FAILED -> PENDING: both are state-machine transitions, in one transaction.
        if not await move_task(
            session,
            run_id=run_id,
            symbol=symbol,
            stage=stage,
            source={TaskState.RUNNING},
            target=TaskState.FAILED,
            error=message,
        ):
            return None
        await session.refresh(task)
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
        "%s task of %s in run %s timed out after %d attempts: %s",
        stage,
        symbol,
        run_id,
        task.attempts,
        "re-queued" if requeued else "failed",
    )
    return not requeued
