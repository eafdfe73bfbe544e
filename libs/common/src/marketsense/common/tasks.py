"""The life of one stage's task inside a handler: claim, complete in one transaction, or fail."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.bus import Outgoing, Subscription
from marketsense.common.db.models import Task
from marketsense.common.db.outbox import add_event, add_message
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import Envelope, Payload, TaskFailed
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState, move_task

log = logging.getLogger(__name__)


class Claim(StrEnum):
    """What a handler should do with an event for a task."""

    WORK = "work"
    DONE_ALREADY = "done-already"
    NOT_WANTED = "not-wanted"


async def claim_task(runtime: Runtime, *, run_id: str, symbol: str, stage: Stage) -> Claim:
    """Mark a task RUNNING and count the attempt; tell the handler whether to do the work."""
    async with runtime.transaction() as session:
        moved = await move_task(
            session,
            run_id=run_id,
            symbol=symbol,
            stage=stage,
            source={TaskState.PENDING},
            target=TaskState.RUNNING,
            count_attempt=True,
        )
        if moved:
            return Claim.WORK
        state = await task_state(session, run_id=run_id, symbol=symbol, stage=stage)
        if state == TaskState.RUNNING:
            # The bus retrying a failed attempt, or a redelivery after a crash mid-task: it is
            # another attempt, so count it; outputs use deterministic keys, so redo the work.
            await session.execute(
                update(Task)
                .where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
                .values(attempts=Task.attempts + 1)
            )
            return Claim.WORK
    if state is None:
        raise NonRetryableError(f"no {stage} task for run {run_id} and symbol {symbol}")
    if state == TaskState.SUCCESS:
        return Claim.DONE_ALREADY
    log.info("skipping %s task in state %s", stage, state)
    return Claim.NOT_WANTED


async def task_state(
    session: AsyncSession, *, run_id: str, symbol: str, stage: Stage
) -> TaskState | None:
    """The current state of a task, or None if there is no such task."""
    state = await session.scalar(
        select(Task.state).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
    )
    return TaskState(state) if state is not None else None


async def complete_task(
    session: AsyncSession, *, run_id: str, symbol: str, stage: Stage, notes: list[str] | None = None
) -> None:
    """Mark a RUNNING task SUCCESS in the caller's transaction, or raise if it is not RUNNING.

    `notes` records what the stage cleaned or dropped from its input, one reason per line.
    """
    moved = await move_task(
        session,
        run_id=run_id,
        symbol=symbol,
        stage=stage,
        source={TaskState.RUNNING},
        target=TaskState.SUCCESS,
        error=None,
    )
    if not moved:
        raise NonRetryableError(f"{stage} task for {symbol} is no longer RUNNING (cancelled?)")
    await session.execute(
        update(Task)
        .where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
        .values(notes=_joined(notes))
    )


MAX_NOTES_CHARS = 8000
"""Longest notes text kept on a task."""

_NOTES_ATTRIBUTE = "task_notes"


def _joined(notes: list[str] | None) -> str | None:
    """Notes as stored: one per line, cut to MAX_NOTES_CHARS; None for no notes."""
    return "\n".join(notes)[:MAX_NOTES_CHARS] if notes else None


def keep_notes(error: BaseException, notes: list[str]) -> BaseException:
    """Attach the notes a stage recorded before it failed, so the failed task keeps them.

    Call it where the error passes on its way out (`keep_notes(exc, notes); raise`); notes
    attached more than once add up, in order.
    """
    if notes:
        setattr(error, _NOTES_ATTRIBUTE, [*notes_of(error), *notes])
    return error


def notes_of(error: BaseException) -> list[str]:
    """The notes attached to an error with `keep_notes`, oldest first."""
    notes = getattr(error, _NOTES_ATTRIBUTE, None)
    return list(notes) if isinstance(notes, list) else []


MAX_ERROR_CHARS = 4000
"""Longest error text kept on a task and sent in its TaskFailed event."""


def announce_task_failed(
    session: AsyncSession,
    *,
    source: str,
    run_id: str,
    symbol: str,
    stage: Stage,
    error: str,
    retryable: bool,
    attempts: int,
) -> None:
    """Queue the TaskFailed event of a task that failed for good, in the caller's transaction."""
    add_event(
        session,
        Envelope.wrap(
            TaskFailed(
                stage=stage,
                error=error[:MAX_ERROR_CHARS],
                retryable=retryable,
                attempts=attempts,
            ),
            run_id=run_id,
            symbol=symbol,
        ),
        source=source,
    )


async def fail_task(
    runtime: Runtime,
    envelope: Envelope,
    *,
    stage: Stage,
    error: BaseException,
    attempts: int,
    dead_letter: Outgoing | None = None,
) -> None:
    """Mark a task FAILED and announce it, queuing its event's dead letter in the same transaction.

    Notes attached to the error with `keep_notes` are recorded on the task with the error.
    The dead letter and the failure commit together or not at all: a database that fails here
    leaves neither, and the bus records them again once the database is back.
    """
    run_id, symbol = envelope.run_id, envelope.symbol
    if dead_letter is None and (run_id is None or symbol is None):
        return
    message = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
    async with runtime.transaction() as session:
        if dead_letter is not None:
            add_message(session, dead_letter, source=runtime.service)
        if run_id is None or symbol is None:
            return
        moved = await move_task(
            session,
            run_id=run_id,
            symbol=symbol,
            stage=stage,
            source={TaskState.RUNNING},
            target=TaskState.FAILED,
            error=message,
        )
        if moved:
            notes = notes_of(error)
            if notes:
                await session.execute(
                    update(Task)
                    .where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
                    .values(notes=_joined(notes))
                )
            announce_task_failed(
                session,
                source=runtime.service,
                run_id=run_id,
                symbol=symbol,
                stage=stage,
                error=message,
                retryable=not isinstance(error, NonRetryableError),
                attempts=attempts,
            )


P = TypeVar("P", bound=Payload)

StageWork = Callable[[str, str, P], Awaitable[None]]
"""A stage's work for one event: (run_id, symbol, payload of the stage's input type)."""


def stage_subscription(
    runtime: Runtime, *, stage: Stage, service: str, accepts: type[P], work: StageWork[P]
) -> Subscription:
    """Subscribe a stage to its input event; a dead-lettered event fails the stage's task, and
    its dead letter is sent through the outbox with that failure."""

    async def handle(envelope: Envelope, payload: P) -> None:
        if envelope.run_id is None or envelope.symbol is None:
            raise NonRetryableError(f"{envelope.type} needs run_id and symbol")
        await work(envelope.run_id, envelope.symbol, payload)

    async def record_dead_letter(
        envelope: Envelope, error: BaseException, attempts: int, letter: Outgoing
    ) -> None:
        await fail_task(
            runtime, envelope, stage=stage, error=error, attempts=attempts, dead_letter=letter
        )

    return Subscription.of(
        accepts, handle, group=runtime.group(service), records_dead_letter=record_dead_letter
    )
