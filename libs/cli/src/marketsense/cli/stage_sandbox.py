"""A runtime for running a stage's own handler without changing anything: its object writes are
recorded instead of made, and its transactions share one database transaction rolled back at
the end, so nothing it queues in the outbox is ever sent."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.engine import Database
from marketsense.common.errors import ObjectNotFound
from marketsense.common.events import ObjectRef
from marketsense.common.runtime import Runtime
from marketsense.common.store.base import ObjectStore, sha256_hex


@dataclass(frozen=True)
class ObjectRead:
    """An object a stage read: its key and the size it had."""

    key: str
    size: int


@dataclass(frozen=True)
class ObjectWrite:
    """An object a stage wrote (or would write), and how it compares with what the key holds:
    `new` (nothing there), `same` (identical bytes) or `differs`."""

    key: str
    sha256: str
    size: int
    stored: str


class RecordingStore(ObjectStore):
    """An object store that reads through to another and records every read and write; with
    `write=False` a write is recorded and compared, never made."""

    def __init__(self, inner: ObjectStore, *, write: bool):
        self.inner = inner
        self.base_uri = inner.base_uri
        self.write = write
        self.reads: list[ObjectRead] = []
        self.writes: list[ObjectWrite] = []

    async def put(self, key: str, data: bytes) -> ObjectRef:
        """Record the write and how it compares with the stored object, then make it if allowed."""
        stored = await self._compare(key, data)
        ref = await self.inner.put(key, data) if self.write else self._ref(key, data)
        self.writes.append(ObjectWrite(key=key, sha256=ref.sha256, size=ref.size, stored=stored))
        return ref

    def _ref(self, key: str, data: bytes) -> ObjectRef:
        return ObjectRef(uri=self.uri_for(key), sha256=sha256_hex(data), size=len(data))

    async def _compare(self, key: str, data: bytes) -> str:
        try:
            current = await self.inner.read_key(key)
        except ObjectNotFound:
            return "new"
        return "same" if sha256_hex(current) == sha256_hex(data) else "differs"

    async def read_key(self, key: str) -> bytes:
        """Read through, recording the key and size."""
        data = await self.inner.read_key(key)
        self.reads.append(ObjectRead(key=key, size=len(data)))
        return data

    async def _write(self, key: str, data: bytes) -> None:  # pragma: no cover - put overrides
        raise AssertionError("RecordingStore writes only through put")

    async def exists(self, key: str) -> bool:
        """Whether the other store holds the key."""
        return await self.inner.exists(key)

    async def delete(self, key: str) -> None:
        """Delete only when writing; a dry run changes nothing."""
        if self.write:
            await self.inner.delete(key)

    async def healthy(self) -> bool:
        """Whether the other store answers."""
        return await self.inner.healthy()


class SharedSessionDatabase(Database):
    """A database whose every session is one open session (of a transaction rolled back later)."""

    def __init__(self, real: Database, session: AsyncSession):
        # No engine of its own: the real one's, through the shared session.
        self.url, self.is_sqlite = real.url, real.is_sqlite
        self.engine, self.sessionmaker = real.engine, real.sessionmaker
        self.shared = session

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The shared session; a commit in it does not end the outer transaction."""
        yield self.shared


class DryRuntime(Runtime):
    """The settings and service name of a real runtime, with a recording store that writes
    nothing and a database whose transactions all live in one that is rolled back."""

    def __init__(self, real: Runtime, session: AsyncSession):
        # Deliberately not Runtime.__init__: nothing here may reach the bus or start a relay.
        self.settings, self.service = real.settings, real.service
        self.bus, self.keyring, self.relay = real.bus, real.keyring, real.relay
        self.store: RecordingStore = RecordingStore(real.store, write=False)
        self.database = SharedSessionDatabase(real.database, session)
        self.session = session

    async def start(self) -> None:
        """Nothing to start: the real runtime's connections are used as they are."""

    async def stop(self) -> None:
        """Nothing to stop: the caller owns the real runtime."""

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The shared session, flushed on success so later reads see the change; never sent."""
        yield self.session
        await self.session.flush()


@contextlib.asynccontextmanager
async def rolled_back_session(database: Database) -> AsyncIterator[AsyncSession]:
    """A session in a transaction that is always rolled back, whatever the code in it commits."""
    async with database.engine.connect() as connection:
        outer = await connection.begin()
        session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="rollback_only"
        )
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()
