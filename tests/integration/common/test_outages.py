"""A real PostgreSQL outage, made by cutting a TCP proxy in front of the shared server: stage
consumers wait it out and finish every task, with no dead letter and no failed task."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import select

from marketsense.common.bus import InProcessBus
from marketsense.common.db.models import Run, Task
from marketsense.common.events import Envelope, ObjectRef, RawDataReady
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from marketsense.common.states import Stage, TaskState
from marketsense.common.tasks import claim_task, complete_task, stage_subscription
from tests.conftest import INTEGRATION, eventually

pytestmark = [INTEGRATION, pytest.mark.timeout(120)]

AS_OF = dt.date(2026, 11, 20)
STAGE = Stage.PROCESS
SERVICE = "outage-processing"


class CuttableProxy:
    """Forwards TCP connections to a server until cut: then refuses new ones and drops open ones,
    as a crashed server does, without touching the server others share."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen (on the same port again after a cut)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and close every forwarded connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@pytest.fixture
async def proxy(fresh_pg_database_url: str) -> AsyncIterator[tuple[CuttableProxy, str]]:
    """A proxy to the test's PostgreSQL database, and the database's URL through it."""
    parts = urlsplit(fresh_pg_database_url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = CuttableProxy(parts.hostname, parts.port)
    await proxy.start()
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    yield proxy, urlunsplit(parts._replace(netloc=netloc))
    with contextlib.suppress(AssertionError):
        await proxy.cut()


def raw_ready(run_id: str, symbol: str) -> Envelope:
    """The event that starts the process stage of a symbol."""
    ref = ObjectRef(uri=f"s3://bucket/raw/{symbol}.parquet", sha256="ab" * 32, size=10)
    return Envelope.wrap(RawDataReady(as_of=AS_OF, bars=ref, rows=60), run_id=run_id, symbol=symbol)


async def test_a_database_outage_fails_no_task_and_dead_letters_nothing(
    proxy: tuple[CuttableProxy, str], tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    server, url = proxy
    settings = CommonSettings(
        home=tmp_path, database_url=SecretStr(url), topic_prefix=prefix, handler_max_attempts=3
    )
    runtime = Runtime(settings, service=SERVICE)
    runtime.bus.retry_base = 0.01  # three attempts would be spent in well under a second
    runtime.bus.dependencies.backoff_max = 1.0
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)
    symbols = [f"S{i:02d}" for i in range(20)]
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=AS_OF, state="RUNNING", symbols=len(symbols)))
        await session.flush()
        session.add_all(
            Task(run_id=run_id, symbol=s, stage=STAGE, state=TaskState.PENDING, attempts=0)
            for s in symbols
        )

    async def work(run_id: str, symbol: str, payload: RawDataReady) -> None:
        await claim_task(runtime, run_id=run_id, symbol=symbol, stage=STAGE)
        async with runtime.transaction() as session:
            await complete_task(session, run_id=run_id, symbol=symbol, stage=STAGE)

    bus.subscribe(
        stage_subscription(runtime, stage=STAGE, service=SERVICE, accepts=RawDataReady, work=work)
    )
    try:
        await runtime.start()
        await server.cut()
        for symbol in symbols:
            await bus.publish(raw_ready(run_id, symbol))
        await asyncio.sleep(3)
        assert _gauge() == 0
        await server.start()
        back = asyncio.get_running_loop().time()

        async def all_done() -> bool:
            async with runtime.database.session() as session:
                states = (await session.scalars(select(Task.state))).all()
            return sorted(states) == [TaskState.SUCCESS] * len(symbols)

        await eventually(all_done, timeout=30)
        moved_after = asyncio.get_running_loop().time() - back
        assert moved_after < 5, f"the pipeline moved again {moved_after:.1f} s after the return"
        assert bus.logs[bus.topic_name("raw.ready.dlq")] == []
        assert _gauge() == 1
        # One line when the database went and one when it came back; none per event or attempt.
        lines = [
            (r.levelname, r.getMessage())
            for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("marketsense")
        ]
        assert lines[0] == ("ERROR", "database is unreachable; consumers wait for it")
        assert lines[1][1].startswith("database is back after ")
        assert len(lines) == 2, lines
    finally:
        await runtime.stop()


def _gauge() -> float | None:
    return REGISTRY.get_sample_value(
        "marketsense_dependency_up", {"service": SERVICE, "dependency": "database"}
    )
