"""An orchestrator served alone, and helpers moving its tasks as the stage services would."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select, update

from marketsense.common.alerts import Alert, Notifier
from marketsense.common.app import create_app
from marketsense.common.auth import KEY_HEADER, Role
from marketsense.common.bus import Subscription
from marketsense.common.db.models import FeatureSet, RawObject, Task
from marketsense.common.events import (
    Envelope,
    FeaturesReady,
    IngestRequested,
    Payload,
    RawDataReady,
)
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState, move_task
from marketsense.orchestrator.app import create_component
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.runs.flows import settle_run
from tests.model_registry_rows import new_api_key


@dataclass
class Recorder:
    """Collects the stage input events the orchestrator publishes, and the alerts it raises."""

    events: list[tuple[str, str | None, Payload]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    async def on_event(self, envelope: Envelope, payload: Payload) -> None:
        """Remember one consumed event as (run id, symbol, payload)."""
        self.events.append((envelope.run_id or "", envelope.symbol, payload))

    async def notify(self, alert: Alert) -> bool:
        """Stand in for the orchestrator's alerter: remember the alert."""
        self.alerts.append(alert)
        return True

    def of(self, kind: type[Payload], run_id: str) -> list[tuple[str | None, Payload]]:
        """The (symbol, payload) of every recorded event of one type for one run."""
        return [(s, p) for r, s, p in self.events if r == run_id and isinstance(p, kind)]


@dataclass
class Orchestra:
    """A served orchestrator, clients holding each role's key, and what it published."""

    runtime: Runtime
    settings: OrchestratorSettings
    api: httpx.AsyncClient
    keys: dict[Role, str]
    recorder: Recorder
    transport: httpx.ASGITransport
    """The app's transport, for other clients of the same served orchestrator."""

    def as_role(self, role: Role | None) -> dict[str, str]:
        """Headers sending the key of `role` (none for None)."""
        return {} if role is None else {KEY_HEADER: self.keys[role]}


def orchestrator_settings(home: Path, database_url: str, **values: Any) -> OrchestratorSettings:
    """Embedded bus and store; the background reaper far apart so tests drive it themselves."""
    defaults: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "api_key_cache_seconds": 0,
        "reaper_interval_seconds": 3600,
    }
    return OrchestratorSettings(**(defaults | values))


@contextlib.asynccontextmanager
async def serve_orchestrator(settings: OrchestratorSettings) -> AsyncIterator[Orchestra]:
    """The orchestrator app started in this process, with a key of every role."""
    runtime = Runtime(settings, service="orchestrator")
    recorder = Recorder()
    for payload in (IngestRequested, RawDataReady, FeaturesReady):
        runtime.bus.subscribe(
            Subscription(
                topic=payload.topic,
                group=runtime.group("test-stage"),
                handler=recorder.on_event,
                accepts=(payload,),
            )
        )
    app = create_app(
        runtime, [create_component(runtime, settings, notifier=recorder)], title="orchestrator"
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://o") as api,
    ):
        keys = {
            role: await new_api_key(runtime.database, role=role, name=f"{role.value}-key")
            for role in Role
        }
        api.headers[KEY_HEADER] = keys[Role.PUBLISHER]
        yield Orchestra(runtime, settings, api, keys, recorder, transport)


async def start_run(orchestra: Orchestra, as_of: dt.date, symbols: list[str]) -> str:
    """Start a run through the API and return its id."""
    created = await orchestra.api.post(
        "/v1/runs", json={"as_of": as_of.isoformat(), "universe": symbols}
    )
    assert created.status_code == 201, created.text
    run_id: str = created.json()["id"]
    return run_id


async def claim(runtime: Runtime, run_id: str, symbol: str, stage: Stage) -> None:
    """Move a task PENDING -> RUNNING and count the attempt, as a stage's handler does."""
    async with runtime.transaction() as session:
        assert await move_task(
            session,
            run_id=run_id,
            symbol=symbol,
            stage=stage,
            source={TaskState.PENDING},
            target=TaskState.RUNNING,
            count_attempt=True,
        )


async def finish(
    runtime: Runtime, run_id: str, symbol: str, stage: Stage, *, error: str | None = None
) -> None:
    """Move a RUNNING task to SUCCESS, or FAILED with `error`."""
    async with runtime.transaction() as session:
        assert await move_task(
            session,
            run_id=run_id,
            symbol=symbol,
            stage=stage,
            source={TaskState.RUNNING},
            target=TaskState.FAILED if error else TaskState.SUCCESS,
            error=error,
        )


async def succeed_symbol(runtime: Runtime, run_id: str, symbol: str) -> None:
    """Run every stage of a symbol to SUCCESS."""
    for stage in Stage:
        await claim(runtime, run_id, symbol, stage)
        await finish(runtime, run_id, symbol, stage)


async def succeed_all(runtime: Runtime, run_id: str, symbols: list[str]) -> None:
    """Mark every task of many symbols SUCCESS at once (a shortcut for large runs)."""
    async with runtime.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.run_id == run_id, Task.symbol.in_(symbols))
            .values(state=TaskState.SUCCESS, attempts=1)
        )


async def fail_symbol(
    runtime: Runtime,
    run_id: str,
    symbol: str,
    stage: Stage,
    error: str,
    *,
    attempts: int = 1,
    notifier: Notifier | None = None,
) -> None:
    """Succeed the stages before `stage`, then fail `stage` after `attempts` claims, and settle
    the run as the orchestrator would, alerting `notifier` (by default, nobody)."""
    for earlier in list(Stage)[: list(Stage).index(stage)]:
        await claim(runtime, run_id, symbol, earlier)
        await finish(runtime, run_id, symbol, earlier)
        if earlier == Stage.INGEST:
            await record_raw(runtime, run_id, symbol)
        if earlier == Stage.PROCESS:
            await record_features(runtime, run_id, symbol)
    await claim(runtime, run_id, symbol, stage)
    for _ in range(attempts - 1):
        async with runtime.transaction() as session:
            await session.execute(
                update(Task)
                .where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
                .values(attempts=Task.attempts + 1)
            )
    await finish(runtime, run_id, symbol, stage, error=error)
    await settle_run(runtime=runtime, notifier=notifier or Recorder(), run_id=run_id)


async def record_raw(runtime: Runtime, run_id: str, symbol: str) -> None:
    """The raw-object rows ingestion leaves for a symbol."""
    async with runtime.transaction() as session:
        run_as_of = dt.date(2026, 1, 1)
        for kind, rows in (("bars", 60), ("texts", 4)):
            session.add(
                RawObject(
                    run_id=run_id,
                    symbol=symbol,
                    as_of=run_as_of,
                    kind=kind,
                    uri=f"file:///raw/{run_id}/{symbol}/{kind}.parquet",
                    sha256="0" * 64,
                    size=100,
                    rows=rows,
                )
            )


async def record_features(runtime: Runtime, run_id: str, symbol: str) -> None:
    """The feature row processing leaves for a symbol."""
    async with runtime.transaction() as session:
        session.add(
            FeatureSet(
                run_id=run_id,
                symbol=symbol,
                as_of=dt.date(2026, 1, 1),
                feature_schema=FEATURE_SCHEMA,
                uri=f"file:///features/{run_id}/{symbol}.parquet",
                sha256="1" * 64,
                size=200,
            )
        )


async def task_rows(runtime: Runtime, run_id: str) -> dict[tuple[str, str], Task]:
    """Every task of a run by (symbol, stage)."""
    async with runtime.database.session() as session:
        tasks = await session.scalars(select(Task).where(Task.run_id == run_id))
        return {(t.symbol, t.stage): t for t in tasks}


@contextlib.contextmanager
def served_on_loopback(app: FastAPI) -> Iterator[str]:
    """An app under uvicorn in a thread, on a free loopback port, until the block ends; its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert httpx.get(f"{url}/healthz", timeout=60).status_code == 200
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
    assert not thread.is_alive(), "the app did not shut down"
