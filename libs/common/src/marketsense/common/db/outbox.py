"""Transactional outbox: events commit with the change they announce, then a relay sends them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.bus import EventBus, Outgoing, outgoing_for
from marketsense.common.bus.base import Headers
from marketsense.common.cancelling import cancel_and_wait
from marketsense.common.db.engine import Database
from marketsense.common.db.models import OutboxMessage
from marketsense.common.events import Envelope
from marketsense.common.metrics import OUTBOX_RELAYED

log = logging.getLogger(__name__)


def add_event(session: AsyncSession, envelope: Envelope, *, source: str) -> None:
    """Queue an event in the caller's transaction; it is sent only if that transaction commits."""
    add_message(session, outgoing_for(envelope), source=source)


def add_message(session: AsyncSession, message: Outgoing, *, source: str) -> None:
    """Queue a message (logical topic, headers kept) in the caller's transaction."""
    session.add(
        OutboxMessage(
            source=source,
            topic=message.topic,
            key=message.key,
            value=message.value,
            headers=_dump_headers(message.headers),
        )
    )


def _dump_headers(headers: Headers) -> str | None:
    # Header values are bytes; base64 keeps them exact in a text column.
    if not headers:
        return None
    return json.dumps([[name, base64.b64encode(value).decode()] for name, value in headers])


def _load_headers(stored: str | None) -> Headers:
    if not stored:
        return ()
    return tuple((name, base64.b64decode(value)) for name, value in json.loads(stored))


class OutboxRelay:
    """Publishes committed outbox rows in id order and deletes them once the bus holds them."""

    def __init__(
        self,
        database: Database,
        bus: EventBus,
        *,
        source: str | None,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        stop_seconds: float = 15.0,
    ):
        self.database = database
        self.bus = bus
        self.source = source
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.stop_seconds = stop_seconds
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Wake the relay now instead of at its next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        """Start relaying in the background."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Send what is committed, then stop; give up after `stop_seconds`.

        Shutdown must end within the pod's grace period even when the bus does not answer; rows
        not sent stay in the table for the next start or another replica.
        """
        self._stopping = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(self._finish(), self.stop_seconds)
        except TimeoutError:
            log.warning("outbox relay stopped with rows unsent after %g s", self.stop_seconds)
        if self._task is not None and not self._task.done():
            await cancel_and_wait(self._task)
        self._task = None

    async def _finish(self) -> None:
        """Let the running batch end, then send every committed row left."""
        if self._task is not None:
            # wait() neither raises the task's outcome nor cancels it when this is cancelled.
            await asyncio.wait([self._task])
        with contextlib.suppress(Exception):
            while await self.relay_once():
                pass

    async def _run(self) -> None:
        while not self._stopping:
            # Cleared before the round, not after it: a notify() (or stop()) that comes while
            # the round runs must wake the next wait rather than be lost for a poll interval.
            self._wakeup.clear()
            try:
                sent = await self.relay_once()
            except Exception as exc:
                # The rows stay and are sent later. An unreachable bus or database is reported
                # once by the watch, not once per try.
                down = await self.bus.dependencies.down(exc)
                if down:
                    await self.bus.dependencies.wait_until_up(down)
                else:
                    log.warning("outbox relay failed; retrying", exc_info=True)
                    await asyncio.sleep(1)
                continue
            if sent == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_seconds)

    async def relay_once(self) -> int:
        """Send one batch of committed rows; return how many were sent."""
        async with self.database.session() as session:
            query = select(OutboxMessage).order_by(OutboxMessage.id).limit(self.batch_size)
            if self.source is not None:
                query = query.where(OutboxMessage.source == self.source)
            # Replicas of one service each take their own rows and never send one twice at once.
            rows = (await session.scalars(query.with_for_update(skip_locked=True))).all()
            if not rows:
                return 0
            await self.bus.publish_many(
                [
                    Outgoing(row.topic, row.value, row.key, _load_headers(row.headers))
                    for row in rows
                ]
            )
            await session.execute(
                delete(OutboxMessage).where(OutboxMessage.id.in_([row.id for row in rows]))
            )
            await session.commit()
        OUTBOX_RELAYED.labels(self.source or "all").inc(len(rows))
        return len(rows)
