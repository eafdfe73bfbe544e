"""Serialized responses kept in memory for a short time, loaded once per key however many ask."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Load = Callable[[], Awaitable[bytes | None]]
"""Produces a response body, or None when there is nothing to answer (not cached)."""


class ResponseCache:
    """Response bodies by key for `ttl` seconds.

    Concurrent misses of one key share a single load, so an expiring entry under load costs one
    database query, not one per waiting request. `clear()` also disowns loads in flight: a body
    read before a model swap is never stored after it.
    """

    def __init__(self, *, ttl: float, max_entries: int = 100_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._loading: dict[str, asyncio.Task[bytes | None]] = {}
        self._generation = 0

    def get(self, key: str) -> bytes | None:
        """A fresh body for the key, or None."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    async def get_or_load(self, key: str, load: Load) -> bytes | None:
        """A fresh body for the key, loading it (once for all concurrent callers) if needed."""
        body = self.get(key)
        if body is not None:
            return body
        task = self._loading.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, load, self._generation))
            self._loading[key] = task
            task.add_done_callback(self._loaded(key))
        # A caller that goes away must not cancel the load the others are waiting for.
        return await asyncio.shield(task)

    async def _load(self, key: str, load: Load, generation: int) -> bytes | None:
        body = await load()
        if body is not None and self.ttl > 0 and generation == self._generation:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # a crude bound; symbols are few, scanners are not
            self._entries[key] = (time.monotonic() + self.ttl, body)
        return body

    def _loaded(self, key: str) -> Callable[[asyncio.Task[bytes | None]], None]:
        def done(task: asyncio.Task[bytes | None]) -> None:
            if self._loading.get(key) is task:
                del self._loading[key]
            if not task.cancelled():
                # Mark an error seen: every caller that waited has had it raised already.
                task.exception()

        return done

    def clear(self) -> None:
        """Forget every body, and let no load started before now store its result."""
        self._generation += 1
        self._entries.clear()
        self._loading.clear()
