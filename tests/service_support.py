"""A service's runtime on a test's database and object store, with the run rows a stage needs and
what it left behind: tasks and the events waiting in the outbox."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from sqlalchemy import select

from marketsense.common.db.models import OutboxMessage, Run, Task
from marketsense.common.events import Envelope, Payload, parse_event
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.common.store import ObjectStore
from tests.backends import object_store_fields


@contextlib.asynccontextmanager
async def service_runtime(
    *, service: str, database_url: str, store: ObjectStore, home: Path
) -> AsyncIterator[Runtime]:
    """A runtime of `service` whose storage is started (no bus, no relay: events stay queued in
    the outbox for the test to read)."""
    settings = CommonSettings.model_validate(
        {"home": home, "database_url": database_url, **object_store_fields(store.base_uri)}
    )
    runtime = Runtime(settings, service=service)
    await runtime.start_storage()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def add_run(
    runtime: Runtime,
    *,
    as_of: dt.date,
    symbols: Iterable[str],
    stage: Stage,
    state: TaskState = TaskState.PENDING,
) -> str:
    """A running run with a task of `stage` in `state` for each symbol; its id."""
    run_id = str(uuid.uuid4())
    wanted = list(symbols)
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=as_of, state=RunState.RUNNING, symbols=len(wanted)))
        await session.flush()
        for symbol in wanted:
            session.add(Task(run_id=run_id, symbol=symbol, stage=stage, state=state))
    return run_id


async def task_of(runtime: Runtime, *, run_id: str, symbol: str, stage: Stage) -> Task:
    """The task of one run, symbol and stage."""
    async with runtime.database.session() as session:
        task = await session.scalar(
            select(Task).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
        )
    assert task is not None, f"no {stage} task for {symbol}"
    return task


async def queued_events(runtime: Runtime) -> list[tuple[Envelope, Payload]]:
    """The events waiting in the outbox, oldest first."""
    async with runtime.database.session() as session:
        rows = await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [parse_event(row.value) for row in rows]
