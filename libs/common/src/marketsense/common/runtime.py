"""What a process shares between its components: database, bus, object store, outbox relay."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.auth import KeyRing
from marketsense.common.bus.factory import bus_from_settings
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.outbox import OutboxRelay
from marketsense.common.outages import Dependency, DependencyWatch
from marketsense.common.settings import CommonSettings
from marketsense.common.store import store_from_settings

log = logging.getLogger(__name__)


class Runtime:
    """Infrastructure adapters built from settings, started and stopped together."""

    def __init__(self, settings: CommonSettings, *, service: str, relay_all: bool = False):
        self.settings = settings
        self.service = service
        self.database = Database(settings.resolved_database_url())
        self.bus = bus_from_settings(settings, client_id=f"marketsense-{service}")
        self.store = store_from_settings(settings)
        # Consumers wait out an outage of any of these instead of failing events for it.
        self.bus.dependencies = DependencyWatch(
            service=service,
            probes={
                Dependency.DATABASE: self.database.healthy,
                Dependency.KAFKA: self.bus.healthy,
                Dependency.OBJECT_STORE: self.store.healthy,
            },
        )
        self.keyring = KeyRing(self.database, ttl=settings.api_key_cache_seconds)
        # Each service relays the events it wrote; one embedded process relays them all.
        self.relay = OutboxRelay(self.database, self.bus, source=None if relay_all else service)

    def group(self, name: str) -> str:
        """The consumer group name for one of this deployment's consumers."""
        return f"{self.settings.consumer_group_prefix}.{name}"

    async def start(self) -> None:
        """Prepare storage, then start messaging."""
        await self.start_storage()
        await self.start_messaging()

    async def start_storage(self) -> None:
        """Prepare the object store and migrate an embedded database."""
        await self.store.start()
        if self.database.is_sqlite:
            # PostgreSQL is migrated by its own job before services start; SQLite has no one else.
            await upgrade(self.database)

    async def start_messaging(self) -> None:
        """Start consuming and relaying; call once handlers are ready for events."""
        await self.bus.start()
        await self.relay.start()

    async def stop(self) -> None:
        """Finish in-flight events, send committed outbox rows, and close connections."""
        await self.bus.stop()
        await self.relay.stop()
        await self.store.close()
        await self.database.dispose()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session committed on success; outbox rows it added are relayed right after."""
        async with self.database.session() as session:
            yield session
            await session.commit()
        self.relay.notify()
