"""A process's shared runtime on a database of each kind: what starting prepares, and a
transaction whose events reach the bus only when it commits."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy import func, select

import marketsense.common.runtime
from marketsense.common.bus import InProcessBus, Subscription
from marketsense.common.db import migrate
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import alembic_config, current_revision
from marketsense.common.db.models import OutboxMessage, Run
from marketsense.common.db.outbox import add_event
from marketsense.common.events import Envelope, IngestRequested, Payload
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from tests.conftest import INTEGRATION, eventually, infra

AS_OF = dt.date(2026, 11, 20)


def request_for(symbol: str) -> Envelope:
    """An ingest request for one symbol of run r1."""
    return Envelope.wrap(IngestRequested(as_of=AS_OF, lookback_days=30), run_id="r1", symbol=symbol)


def settings_for(database_url: str, tmp_path: Path, prefix: str) -> CommonSettings:
    """Settings putting a runtime on the test database, the in-process bus and a folder store."""
    return CommonSettings(
        home=tmp_path / "home",
        database_url=SecretStr(database_url),
        topic_prefix=prefix,
        consumer_group_prefix="acme-prod",
    )


@contextlib.asynccontextmanager
async def running(runtime: Runtime) -> AsyncIterator[list[Envelope]]:
    """A started runtime whose bus hands every ingest request to the list it yields."""
    received: list[Envelope] = []

    async def handle(envelope: Envelope, payload: Payload) -> None:
        received.append(envelope)

    runtime.bus.subscribe(
        Subscription(topic=IngestRequested.topic, group=runtime.group("ingestion"), handler=handle)
    )
    await runtime.start()
    try:
        yield received
    finally:
        await runtime.stop()


def counted_rounds(runtime: Runtime) -> list[int]:
    """A list the runtime's relay appends each finished round's count of sent rows to."""
    rounds: list[int] = []
    relay_once = runtime.relay.relay_once

    async def counting() -> int:
        sent = await relay_once()
        rounds.append(sent)
        return sent

    runtime.relay.relay_once = counting  # type: ignore[method-assign]
    return rounds


async def outbox_rows(database: Database) -> int:
    """Outbox rows not relayed yet."""
    async with database.session() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)


def test_consumer_groups_are_named_under_the_deployments_prefix(tmp_path: Path) -> None:
    runtime = Runtime(CommonSettings(home=tmp_path, consumer_group_prefix="acme-prod"), service="x")

    assert runtime.group("processing") == "acme-prod.processing"
    assert runtime.keyring.ttl == 30.0
    assert isinstance(runtime.bus, InProcessBus)


async def test_starting_on_the_embedded_default_migrates_sqlite_and_prepares_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Other tests' apps start on a copy of a migrated file; this one migrates a new file itself.
    monkeypatch.setattr(marketsense.common.runtime, "upgrade", migrate.upgrade)
    home = tmp_path / "fresh-home"
    runtime = Runtime(CommonSettings(home=home), service="embedded")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    await runtime.start()
    try:
        assert await current_revision(runtime.database) == head
        assert await runtime.store.healthy()
        assert await runtime.bus.healthy()
    finally:
        await runtime.stop()

    assert (home / "marketsense.db").is_file()
    assert runtime.store.base_uri == (home / "objects").resolve().as_uri()


@pytest.mark.parametrize("relay_all", [False, True], ids=["own-events", "every-event"])
async def test_a_committed_transactions_events_are_relayed_at_once(
    database: Database, database_url: str, tmp_path: Path, prefix: str, relay_all: bool
) -> None:
    settings = settings_for(database_url, tmp_path, prefix)
    runtime = Runtime(settings, service="orchestrator", relay_all=relay_all)
    # Once the relay has gone idle, only the transaction's wake-up sends the rows in time.
    runtime.relay.poll_seconds = 3600
    rounds = counted_rounds(runtime)
    async with running(runtime) as received:
        await eventually(lambda: rounds)
        async with runtime.transaction() as session:
            add_event(session, request_for("AAA"), source="orchestrator")
            add_event(session, request_for("BBB"), source="someone-else")

        await eventually(lambda: len(received) == (2 if relay_all else 1), timeout=10)

    assert [e.symbol for e in received] == (["AAA", "BBB"] if relay_all else ["AAA"])
    assert await outbox_rows(database) == (0 if relay_all else 1)


async def test_a_transaction_that_raises_stores_nothing_and_sends_nothing(
    database: Database, database_url: str, tmp_path: Path, prefix: str
) -> None:
    runtime = Runtime(settings_for(database_url, tmp_path, prefix), service="orchestrator")
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)

    async def change_that_fails() -> None:
        async with runtime.transaction() as session:
            session.add(Run(id=str(uuid.uuid4()), as_of=AS_OF, state="PENDING", symbols=1))
            add_event(session, request_for("AAA"), source="orchestrator")
            await session.flush()  # the rows exist inside the transaction...
            raise RuntimeError("validation failed")  # ...which then rolls back

    async with running(runtime) as received:
        with pytest.raises(RuntimeError, match="validation failed"):
            await change_that_fails()

    assert received == []
    assert bus.logs[bus.topic_name(IngestRequested.topic)] == []
    assert await outbox_rows(database) == 0
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Run)) == 0


async def test_stopping_sends_the_events_committed_before_it(
    database: Database, database_url: str, tmp_path: Path, prefix: str
) -> None:
    runtime = Runtime(settings_for(database_url, tmp_path, prefix), service="orchestrator")
    bus = runtime.bus
    assert isinstance(bus, InProcessBus)
    await runtime.start()
    runtime.relay.poll_seconds = 3600
    async with database.session() as session:
        # Committed behind the runtime's back: no wake-up, so only stop() relays it.
        add_event(session, request_for("AAA"), source="orchestrator")
        await session.commit()

    await runtime.stop()

    [record] = bus.logs[bus.topic_name(IngestRequested.topic)]
    assert record.key == "AAA"
    assert await outbox_rows(database) == 0


@INTEGRATION
async def test_starting_on_postgresql_leaves_migrating_to_the_migration_job(
    tmp_path: Path, prefix: str
) -> None:
    dsn = infra("MARKETSENSE_TEST_PG_DSN")
    name = f"marketsense_unmigrated_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{dsn}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        runtime = Runtime(settings_for(f"{dsn}/{name}", tmp_path, prefix), service="x")
        await runtime.start()
        try:
            assert await current_revision(runtime.database) is None
        finally:
            await runtime.stop()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
