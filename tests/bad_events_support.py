"""Bad events sent to one consuming service: its consumers running alone, what lands on its
dead-letter topic, and the broken references and events the services' suites send."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.cli.embedded import PipelineSettings
from marketsense.common.app import Component, create_app
from marketsense.common.bus import Outgoing, Record, Subscription
from marketsense.common.bus.base import DLQ_SUFFIX
from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.models import Run, Task
from marketsense.common.events import Envelope, ObjectRef, Payload
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from tests.backends import real_servers
from tests.conftest import INTEGRATION

BuildComponent = Callable[[Runtime, PipelineSettings], Component]

BACKENDS = ["embedded", pytest.param("real", marks=INTEGRATION)]
"""Parameters of a suite's `settings` fixture: the embedded default and the real servers."""

KEY = "ONE-KEY"
"""Every event of a test shares this message key: one partition, handled in publish order."""

NOT_JSON = b'{"id": "not closed'
UNREADABLE = "UnreadableEvent: not JSON"
UNSUPPORTED = "schema version 99 is not supported"
MISPLACED = "does not belong on topic"


def backend_settings(
    request: pytest.FixtureRequest, tmp_path: Path, prefix: str
) -> PipelineSettings:
    """Embedded default (SQLite, folder, in-process bus) or the real servers, as
    `request.param` says; tests that need a model add its folder."""
    values: dict[str, object] = {"home": tmp_path / "home", "handler_retry_base_seconds": 0.01}
    if request.param == "real":
        values |= real_servers(
            database_url=request.getfixturevalue("fresh_pg_database_url"), prefix=prefix
        )
    return PipelineSettings(**values)  # type: ignore[arg-type]


def unused_trading_day() -> dt.date:
    """A trading day no other test's run uses: a day may have only one live run."""
    # A New York session: the simulated market has no weekend or holiday bars.
    sessions = exchange_calendar().sessions(dt.date(2018, 1, 1), dt.date(2027, 7, 30))
    return sessions[uuid.uuid4().int % len(sessions)]


@contextlib.asynccontextmanager
async def running(
    settings: PipelineSettings, build: BuildComponent, topic: str
) -> AsyncIterator[tuple[Runtime, list[Record]]]:
    """One service's consumers on the settings' backends, and what lands on `topic`'s DLQ."""
    runtime = Runtime(settings, service="bad-events", relay_all=True)
    dead: list[Record] = []

    async def collect(record: Record) -> None:
        dead.append(record)

    runtime.bus.subscribe(
        Subscription(
            topic=topic + DLQ_SUFFIX, group=runtime.group("dlq-reader"), raw_handler=collect
        )
    )
    app = create_app(runtime, [build(runtime, settings)], title="bad events")
    async with app.router.lifespan_context(app):
        yield runtime, dead


def event(payload: Payload, *, run_id: str, symbol: str, version: int | None = None) -> bytes:
    """An event's bytes, claiming schema `version` when given."""
    envelope = Envelope.wrap(payload, run_id=run_id, symbol=symbol)
    if version is not None:
        envelope = envelope.model_copy(update={"schema_version": version})
    return envelope.to_bytes()


async def send(runtime: Runtime, topic: str, values: list[bytes]) -> None:
    """Publish raw values in order under one key."""
    await runtime.bus.publish_many([Outgoing(topic, value, KEY) for value in values])


def dlq_errors(dead: list[Record]) -> list[str]:
    """The error each dead-lettered record carries, in arrival order."""
    return [record.header("x-dlq-error") or "" for record in dead]


async def find_task(runtime: Runtime, run_id: str, symbol: str, stage: Stage) -> Task | None:
    """One task of a run, if it exists."""
    async with runtime.database.session() as session:
        return await session.scalar(
            select(Task).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
        )


async def task_state(runtime: Runtime, run_id: str, symbol: str, stage: Stage) -> str | None:
    """One task's state, if it exists."""
    found = await find_task(runtime, run_id, symbol, stage)
    return None if found is None else found.state


async def new_run(
    runtime: Runtime, *, as_of: dt.date, tasks: dict[str, dict[Stage, TaskState]]
) -> str:
    """A RUNNING run with the given tasks per symbol."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=as_of, state=RunState.RUNNING, symbols=len(tasks)))
        await session.flush()
        for symbol, stages in tasks.items():
            for stage, state in stages.items():
                session.add(Task(run_id=run_id, symbol=symbol, stage=stage, state=state))
    return run_id


def missing(ref: ObjectRef) -> ObjectRef:
    """A reference like `ref` to an object that was never stored."""
    return ObjectRef(uri=ref.uri.replace(".parquet", "-gone.parquet"), sha256=ref.sha256, size=1)


def tampered(ref: ObjectRef) -> ObjectRef:
    """`ref` with a checksum its bytes do not have."""
    return ObjectRef(uri=ref.uri, sha256="0" * 64, size=ref.size)
