"""Cached latest answers: one load however many ask, kept for the ttl, never kept across a swap."""

from __future__ import annotations

import asyncio

import pytest

from marketsense.prediction.latest_cache import ResponseCache


class Loader:
    """A load that waits until released, counting its calls, answering `body` or raising."""

    def __init__(self, body: bytes | None = b'{"symbol": "AAA"}', error: Exception | None = None):
        self.body, self.error = body, error
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> bytes | None:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.body

    def released(self) -> Loader:
        """This loader, answering at once."""
        self.release.set()
        return self


async def waiting(
    count: int, cache: ResponseCache, load: Loader
) -> list[asyncio.Task[bytes | None]]:
    """`count` callers of one key, each parked on the shared load."""
    tasks = [asyncio.create_task(cache.get_or_load("AAA", load)) for _ in range(count)]
    await asyncio.sleep(0)  # let every caller reach the load
    return tasks


async def test_concurrent_misses_share_one_load() -> None:
    cache, load = ResponseCache(ttl=60), Loader()
    callers = await waiting(20, cache, load)

    load.release.set()

    assert await asyncio.gather(*callers) == [load.body] * 20
    assert load.calls == 1


async def test_a_body_is_answered_from_memory_for_the_ttl_then_loaded_again() -> None:
    cache, load = ResponseCache(ttl=0.05), Loader().released()

    assert cache.get("AAA") is None
    assert await cache.get_or_load("AAA", load) == load.body
    assert cache.get("AAA") == load.body
    assert await cache.get_or_load("AAA", load) == load.body
    assert load.calls == 1
    assert cache.get("BBB") is None  # per key

    await asyncio.sleep(0.1)
    assert cache.get("AAA") is None
    assert await cache.get_or_load("AAA", load) == load.body
    assert load.calls == 2


async def test_a_ttl_of_zero_keeps_nothing() -> None:
    cache, load = ResponseCache(ttl=0), Loader().released()

    await cache.get_or_load("AAA", load)
    await cache.get_or_load("AAA", load)

    assert load.calls == 2
    assert cache.get("AAA") is None


async def test_nothing_to_answer_is_not_kept() -> None:
    cache, load = ResponseCache(ttl=60), Loader(body=None).released()

    assert await cache.get_or_load("AAA", load) is None
    assert await cache.get_or_load("AAA", load) is None
    assert load.calls == 2


async def test_an_error_reaches_every_waiting_caller_and_is_not_kept() -> None:
    cache, failing = ResponseCache(ttl=60), Loader(error=ConnectionError("database gone"))
    callers = await waiting(3, cache, failing)

    failing.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)

    assert [str(r) for r in results] == ["database gone"] * 3
    assert all(isinstance(r, ConnectionError) for r in results)
    working = Loader().released()
    assert await cache.get_or_load("AAA", working) == working.body
    assert working.calls == 1


async def test_a_caller_that_goes_away_does_not_cancel_the_load_others_wait_for() -> None:
    cache, load = ResponseCache(ttl=60), Loader()
    impatient, patient = await waiting(2, cache, load)

    impatient.cancel()
    await asyncio.sleep(0)
    load.release.set()

    assert await patient == load.body
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert cache.get("AAA") == load.body
    assert load.calls == 1


async def test_clear_forgets_bodies_and_disowns_loads_in_flight() -> None:
    cache = ResponseCache(ttl=60)
    await cache.get_or_load("BBB", Loader().released())
    before_swap = Loader(body=b"old version's answer")
    [caller] = await waiting(1, cache, before_swap)

    cache.clear()
    after_swap = Loader(body=b"new version's answer")
    [fresh] = await waiting(1, cache, after_swap)
    before_swap.release.set()

    assert await caller == b"old version's answer"  # its caller still gets an answer
    assert cache.get("AAA") is None  # but it is not kept past the swap
    assert after_swap.calls == 1  # the caller after the swap did not join the old load
    after_swap.release.set()
    assert await fresh == b"new version's answer"
    assert cache.get("AAA") == b"new version's answer"
    assert cache.get("BBB") is None


async def test_a_full_cache_starts_over_rather_than_grow() -> None:
    cache = ResponseCache(ttl=60, max_entries=2)
    for key in ("AAA", "BBB", "CCC"):
        await cache.get_or_load(key, Loader(body=key.encode()).released())

    assert (cache.get("AAA"), cache.get("BBB"), cache.get("CCC")) == (None, None, b"CCC")
