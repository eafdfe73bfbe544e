"""Async engine and sessions for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str, *, pool_size: int = 10):
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # No pre-ping: on asyncpg it is three round trips (BEGIN, a ping, ROLLBACK) before every
        # checkout, 4% of a pipeline run's CPU (bench/RESULTS.md). `_drop_closed` below catches
        # what it is there for, a server restart, without a round trip.
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            event.listen(self.engine.sync_engine, "checkout", _drop_closed)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; the caller commits."""
        async with self.sessionmaker() as session:
            yield session

    async def healthy(self) -> bool:
        """Whether the database answers `SELECT 1`."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any driver error means "not ready", whatever its class
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _drop_closed(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    # asyncpg marks a connection closed as soon as the event loop reads the server's goodbye
    # (a restart or an idle-session timeout); raising here makes the pool open a fresh one. A
    # connection that dies silently still fails its first statement, which callers retry.
    if record.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
