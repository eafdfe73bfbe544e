"""Ending a helper task: the helper's cancellation stays inside, the caller's passes through,
and the helper's own failure is not lost."""

from __future__ import annotations

import asyncio

import pytest

from marketsense.common.cancelling import cancel_and_wait, wait_ended


async def _cleans_up_slowly(cleaning: asyncio.Event) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        cleaning.set()
        await asyncio.sleep(0.05)  # a helper's clean-up that takes a moment


async def test_the_helpers_cancellation_ends_quietly() -> None:
    helper = asyncio.create_task(_cleans_up_slowly(asyncio.Event()))
    await asyncio.sleep(0)

    await cancel_and_wait(helper)

    assert helper.cancelled()


async def test_a_cancellation_of_the_caller_while_it_waits_is_not_swallowed() -> None:
    cleaning = asyncio.Event()
    carried_on = asyncio.Event()

    async def caller() -> None:
        helper = asyncio.create_task(_cleans_up_slowly(cleaning))
        await asyncio.sleep(0)
        await cancel_and_wait(helper)
        carried_on.set()  # reached only if the caller's own cancellation was lost

    task = asyncio.create_task(caller())
    await cleaning.wait()
    task.cancel()  # arrives while the caller waits for the helper's clean-up

    await asyncio.wait([task])
    assert task.cancelled()
    assert not carried_on.is_set()


async def test_the_helpers_own_failure_is_raised() -> None:
    async def fails() -> None:
        raise ValueError("helper broke")

    helper = asyncio.create_task(fails())
    await asyncio.sleep(0)

    with pytest.raises(ValueError, match="helper broke"):
        await wait_ended(helper)
