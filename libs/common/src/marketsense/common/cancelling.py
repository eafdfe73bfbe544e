"""Ending a helper task from inside another task without losing the caller's own cancellation.

`with suppress(CancelledError): await task` cannot tell the helper's cancellation from the
caller's: a stop that arrives while the caller waits there is swallowed, and the caller runs on
as though nothing had asked it to end."""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_ended(task: asyncio.Future[Any]) -> None:
    """Wait for a task to end; re-raise its own failure, not its cancellation."""
    # asyncio.wait never raises the task's outcome, so only the caller's cancellation leaves here.
    await asyncio.wait([task])
    if not task.cancelled():
        task.result()


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel a task and wait for it to end (see `wait_ended`)."""
    task.cancel()
    await wait_ended(task)
