"""Transactional outbox: events commit with the change they announce, then a relay sends them.

Order. The relay sends rows in one total order that no later commit can break, so the events of
one key leave in the order they were written and none is skipped:

- PostgreSQL: a row's id is drawn at insert, but transactions commit in any order, so a row with
  a lower id can become visible after a higher one was sent. The relay therefore sends only rows
  whose transaction is older than every transaction still in flight (its `xmin` precedes the
  snapshot's `pg_snapshot_xmin`), in the order of their transactions (`xmin`), then of their ids.
  Once that holds for a row it holds for every row before it, and any row still to come belongs
  to a younger transaction, so it sorts after everything already sent. One relay per source runs
  at a time (an advisory lock), so two replicas cannot overtake each other either.
- SQLite has one writer at a time: a transaction holds the write lock from its first insert to
  its commit, so ids are drawn in commit order and id order is already final.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging

from sqlalchemy import delete, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement, Label

from marketsense.common.bus import EventBus, Outgoing, outgoing_for
from marketsense.common.bus.base import Headers
from marketsense.common.cancelling import cancel_and_wait
from marketsense.common.db.engine import Database
from marketsense.common.db.models import OutboxMessage
from marketsense.common.events import Envelope
from marketsense.common.metrics import OUTBOX_RELAYED

log = logging.getLogger(__name__)

_ROW_AGE: ColumnElement[int] = literal_column("age(outbox.xmin)")
"""How many transactions ago a row's own transaction began (outbox rows are never updated, so
the system column `xmin` is the inserting transaction); larger is older, across xid wraparound."""

_SETTLED: Label[bool] = literal_column(
    "age(outbox.xmin) > age(pg_snapshot_xmin(pg_current_snapshot())::xid)"
).label("settled")
"""Whether a row's transaction is older than every transaction still in flight."""

_ALL_SOURCES_LOCK = (0x0B0C, 0)
"""The advisory lock of a relay of every source; relays of one source hold it shared."""

_SOURCE_LOCK_CLASS = 0x0B0D
"""Advisory lock namespace of one source's relays, keyed by a hash of the source."""


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
    """Publishes committed outbox rows in their final order, deleting them once the bus has them."""

    def __init__(
        self,
        database: Database,
        bus: EventBus,
        *,
        source: str | None,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        stop_seconds: float = 15.0,
        settle_seconds: float = 2.0,
    ):
        self.database = database
        self.bus = bus
        self.source = source
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.stop_seconds = stop_seconds
        # Longest a round waits for in-flight transactions that hold committed rows back.
        self.settle_seconds = settle_seconds
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
            if not await self._lock(session):
                return 0  # another replica of this source is relaying; its order is kept
            rows = await self._settled_rows(session)
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

    async def _lock(self, session: AsyncSession) -> bool:
        """Take this relay's turn for the transaction; False while another relay has it."""
        if self.database.is_sqlite:
            return True  # one relay per embedded database, and SQLite has no advisory locks
        params: dict[str, object] = {
            "all_cls": _ALL_SOURCES_LOCK[0],
            "all_key": _ALL_SOURCES_LOCK[1],
        }
        if self.source is None:
            query = "SELECT pg_try_advisory_xact_lock(:all_cls, :all_key)"
        else:
            # Shared on "all", so a relay of every source excludes the relays of each one.
            query = (
                "SELECT pg_try_advisory_xact_lock_shared(:all_cls, :all_key)"
                " AND pg_try_advisory_xact_lock(:cls, hashtext(:source))"
            )
            params |= {"cls": _SOURCE_LOCK_CLASS, "source": self.source}
        return bool(await session.scalar(text(query), params))

    async def _settled_rows(self, session: AsyncSession) -> list[OutboxMessage]:
        """The next batch in the final order, waiting briefly while in-flight ones hold it back."""
        query = select(OutboxMessage).limit(self.batch_size)
        if self.source is not None:
            query = query.where(OutboxMessage.source == self.source)
        if self.database.is_sqlite:
            return list((await session.scalars(query.order_by(OutboxMessage.id))).all())
        # Settled rows sort first: every one is older than any row still held back.
        query = query.add_columns(_SETTLED).order_by(_ROW_AGE.desc(), OutboxMessage.id)
        deadline = asyncio.get_running_loop().time() + self.settle_seconds
        pause = 0.01
        while True:
            found = (await session.execute(query)).all()
            rows = list(itertools.takewhile(lambda r: r.settled, found))
            if rows or not found or asyncio.get_running_loop().time() + pause > deadline:
                return [row.OutboxMessage for row in rows]
            # Committed rows wait on an older transaction, usually a few milliseconds from its
            # commit; a new statement sees a new snapshot.
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)
