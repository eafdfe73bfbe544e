"""Infrastructure outages: which dependency an error points at, and waiting until it is back.

An outage of the database, Kafka or the object store is nobody's event's fault: a consumer that
meets one waits for the dependency instead of spending the event's attempts on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import asyncpg.exceptions
import botocore.exceptions
import obstore.exceptions
import sqlalchemy.exc
from aiokafka.errors import KafkaError

from marketsense.common.errors import NonRetryableError
from marketsense.common.metrics import DEPENDENCY_UP

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[bool]]


class Dependency(StrEnum):
    """A piece of infrastructure a service cannot work without."""

    DATABASE = "database"
    KAFKA = "kafka"
    OBJECT_STORE = "object-store"


_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection came free: every one waits on a server
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InterfaceError,
)
_KAFKA_ERRORS: tuple[type[BaseException], ...] = (KafkaError,)
_OBJECT_STORE_ERRORS: tuple[type[BaseException], ...] = (
    obstore.exceptions.GenericError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
)
_UNATTRIBUTED_ERRORS = (OSError, TimeoutError)
"""A socket or a timeout with no library's name on it: any dependency may be behind it."""

_CHAIN_DEPTH = 8


def suspects(error: BaseException) -> frozenset[Dependency]:
    """The dependencies an error may mean are unreachable; empty when it is the event's own.

    Only a suspicion: a probe of each suspect decides whether it is really down, so an error that
    merely looks like an outage (a data source's timeout, a locked SQLite file) still counts as
    the event's failure.
    """
    found: set[Dependency] = set()
    unattributed = False
    for link in _chain(error):
        if isinstance(link, NonRetryableError):
            return frozenset()  # the handler decided: retrying cannot help, outage or not
        if isinstance(link, sqlalchemy.exc.DBAPIError) and link.connection_invalidated:
            found.add(Dependency.DATABASE)
        if isinstance(link, _DATABASE_ERRORS):
            found.add(Dependency.DATABASE)
        elif isinstance(link, _KAFKA_ERRORS):
            found.add(Dependency.KAFKA)
        elif isinstance(link, _OBJECT_STORE_ERRORS):
            found.add(Dependency.OBJECT_STORE)
        elif isinstance(link, _UNATTRIBUTED_ERRORS):
            unattributed = True
    if not found and unattributed:
        return frozenset(Dependency)
    return frozenset(found)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """An error and the errors it was raised from or while handling, nearest first."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen and len(seen) < _CHAIN_DEPTH:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


@dataclass
class _State:
    """What this process knows of one dependency."""

    up: bool = True
    down_since: float = 0.0
    checked_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class DependencyWatch:
    """Probes suspected dependencies, waits out their outages, and reports them once each.

    Every consumer of a process shares one watch: a dependency's going down and coming back are
    logged once and set `marketsense_dependency_up`, however many consumers wait on it.
    """

    def __init__(
        self,
        *,
        service: str = "",
        probes: Mapping[Dependency, Probe] | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
        probe_timeout: float = 3.0,
        probe_reuse: float = 0.2,
    ):
        self.service = service
        self.probes: dict[Dependency, Probe] = {}
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        """Longest wait between probes: a dependency that returns is noticed within it."""
        self.probe_timeout = probe_timeout
        self.probe_reuse = probe_reuse
        """A probe's answer is reused this long, so many waiting consumers probe once."""
        self._states: dict[Dependency, _State] = {}
        for dependency, probe in (probes or {}).items():
            self.watch(dependency, probe)

    def watch(self, dependency: Dependency, probe: Probe) -> None:
        """Probe a dependency this way when an error points at it; it counts as up until then."""
        self.probes[dependency] = probe
        DEPENDENCY_UP.labels(self.service, dependency).set(1)

    async def down(self, error: BaseException) -> list[Dependency]:
        """The dependencies an error points at that a probe finds unreachable right now."""
        watched = [d for d in sorted(suspects(error)) if d in self.probes]
        answers = await asyncio.gather(*(self.is_up(d) for d in watched))
        return [d for d, up in zip(watched, answers, strict=True) if not up]

    async def wait_until_up(self, dependencies: list[Dependency]) -> None:
        """Back off between probes (capped) until every dependency answers; cancellable."""
        delay = self.backoff_initial
        for dependency in dependencies:
            while not await self.is_up(dependency):
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)

    async def is_up(self, dependency: Dependency) -> bool:
        """Probe a dependency (or reuse a fresh answer) and record any change of its state."""
        state = self._states.setdefault(dependency, _State())
        async with state.lock:
            if time.monotonic() - state.checked_at < self.probe_reuse:
                return state.up
            try:
                up = await asyncio.wait_for(self.probes[dependency](), self.probe_timeout)
            except Exception:  # a probe that cannot even run finds its dependency down
                up = False
            state.checked_at = time.monotonic()
            self._record(dependency, state, up)
            return up

    def _record(self, dependency: Dependency, state: _State, up: bool) -> None:
        if up == state.up:
            return
        state.up = up
        DEPENDENCY_UP.labels(self.service, dependency).set(1 if up else 0)
        if up:
            outage = time.monotonic() - state.down_since
            log.warning("%s is back after %.1f s; consumers resume", dependency, outage)
        else:
            state.down_since = time.monotonic()
            log.error("%s is unreachable; consumers wait for it", dependency)
