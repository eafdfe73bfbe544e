"""The transactional outbox and its relay, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import func, select

from marketsense.common.bus import EventBus, InProcessBus, Outgoing, Subscription
from marketsense.common.db.engine import Database
from marketsense.common.db.models import OutboxMessage
from marketsense.common.db.outbox import OutboxRelay, add_event, add_message
from marketsense.common.events import Envelope, IngestRequested, Payload, parse_event
from tests.conftest import INTEGRATION, eventually

AS_OF = dt.date(2026, 11, 20)
TOPIC = IngestRequested.topic


class FlakyBus(InProcessBus):
    """An in-process bus whose broker can be taken away, wholly or after some messages."""

    def __init__(self, *, topic_prefix: str) -> None:
        super().__init__(topic_prefix=topic_prefix)
        self.down = False
        self.accept_before_failing: int | None = None
        self.failed_sends = 0
        self.delay = 0.0

    async def _send(self, messages: Sequence[Outgoing]) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)  # a broker round trip, so relays overlap
        if self.accept_before_failing is not None:
            await super()._send(messages[: self.accept_before_failing])
            self.failed_sends += 1
            raise ConnectionError("broker went away mid-batch")
        if self.down:
            self.failed_sends += 1
            raise ConnectionError("broker unavailable")
        await super()._send(messages)


class CountingRelay(OutboxRelay):
    """A relay that counts the rounds it has finished, so a test knows when it is idle."""

    finished_rounds = 0

    async def relay_once(self) -> int:
        sent = await super().relay_once()
        self.finished_rounds += 1
        return sent


@pytest.fixture
def bus(prefix: str) -> FlakyBus:
    """An in-process bus, up unless a test takes it down; only its logs are read."""
    return FlakyBus(topic_prefix=prefix)


def _event(symbol: str, lookback: int = 30) -> Envelope:
    return Envelope.wrap(
        IngestRequested(as_of=AS_OF, lookback_days=lookback), run_id="run-1", symbol=symbol
    )


async def _commit_events(database: Database, events: list[Envelope], *, source: str) -> None:
    async with database.session() as session:
        for envelope in events:
            add_event(session, envelope, source=source)
        await session.commit()


async def _outbox_rows(database: Database, source: str | None = None) -> int:
    query = select(func.count()).select_from(OutboxMessage)
    if source is not None:
        query = query.where(OutboxMessage.source == source)
    async with database.session() as session:
        return int(await session.scalar(query) or 0)


def _sent(bus: InProcessBus) -> list[Envelope]:
    return [parse_event(record.value)[0] for record in bus.logs[bus.topic_name(TOPIC)]]


async def test_event_of_a_committed_transaction_is_relayed_exactly_once_then_deleted(
    database: Database, bus: FlakyBus
) -> None:
    envelope = _event("AAA")
    await _commit_events(database, [envelope], source="orchestrator")
    relay = OutboxRelay(database, bus, source="orchestrator")

    assert await _outbox_rows(database) == 1
    assert await relay.relay_once() == 1
    assert await relay.relay_once() == 0

    records = bus.logs[bus.topic_name(TOPIC)]
    assert len(records) == 1
    assert records[0].key == "AAA"
    assert records[0].value == envelope.to_bytes()
    assert await _outbox_rows(database) == 0


async def test_event_of_a_rolled_back_transaction_is_never_sent(
    database: Database, bus: FlakyBus
) -> None:
    async def change_that_fails() -> None:
        async with database.session() as session:
            add_event(session, _event("AAA"), source="orchestrator")
            await session.flush()  # the row exists inside the transaction...
            raise RuntimeError("change failed")  # ...which then rolls back

    with pytest.raises(RuntimeError, match="change failed"):
        await change_that_fails()
    async with database.session() as session:
        add_event(session, _event("BBB"), source="orchestrator")
        await session.rollback()
    relay = OutboxRelay(database, bus, source=None)

    assert await relay.relay_once() == 0
    assert _sent(bus) == []
    assert await _outbox_rows(database) == 0


async def test_relay_keeps_rows_while_the_bus_is_down_and_sends_them_once_it_recovers(
    database: Database, bus: FlakyBus
) -> None:
    events = [_event("AAA", 1), _event("BBB", 2), _event("AAA", 3)]
    await _commit_events(database, events, source="ingestion")
    relay = OutboxRelay(database, bus, source="ingestion")
    bus.down = True

    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert await _outbox_rows(database) == 3
    assert _sent(bus) == []

    bus.down = False
    assert await relay.relay_once() == 3

    assert [e.id for e in _sent(bus)] == [e.id for e in events]
    assert await _outbox_rows(database) == 0


async def test_background_relay_survives_an_outage_and_loses_nothing(
    database: Database, bus: FlakyBus
) -> None:
    relay = OutboxRelay(database, bus, source="ingestion", poll_seconds=0.05)
    bus.down = True
    await relay.start()
    try:
        events = [_event(f"S{i}", i + 1) for i in range(5)]
        await _commit_events(database, events, source="ingestion")
        relay.notify()
        await eventually(lambda: bus.failed_sends >= 1)
        assert await _outbox_rows(database) == 5

        bus.down = False

        async def drained() -> bool:
            return await _outbox_rows(database) == 0

        await eventually(drained)
    finally:
        await relay.stop()

    assert sorted(str(e.id) for e in _sent(bus)) == sorted(str(e.id) for e in events)
    assert await _outbox_rows(database) == 0


async def test_publish_failing_mid_batch_resends_the_batch_and_loses_nothing(
    database: Database, bus: FlakyBus
) -> None:
    events = [_event(f"S{i}", i + 1) for i in range(4)]
    await _commit_events(database, events, source="ingestion")
    relay = OutboxRelay(database, bus, source="ingestion")
    bus.accept_before_failing = 2

    with pytest.raises(ConnectionError):
        await relay.relay_once()
    assert await _outbox_rows(database) == 4

    bus.accept_before_failing = None
    assert await relay.relay_once() == 4

    # At least once: the two messages the broker took before failing come again.
    sent = [e.id for e in _sent(bus)]
    assert sent == [e.id for e in events[:2]] + [e.id for e in events]
    assert await _outbox_rows(database) == 0


async def test_relay_with_a_source_sends_only_its_own_rows(
    database: Database, bus: FlakyBus
) -> None:
    mine = [_event("AAA", 1), _event("BBB", 2)]
    theirs = [_event("CCC", 3)]
    await _commit_events(database, mine, source="processing")
    await _commit_events(database, theirs, source="prediction")

    assert await OutboxRelay(database, bus, source="processing").relay_once() == 2
    assert [e.id for e in _sent(bus)] == [e.id for e in mine]
    assert await _outbox_rows(database, "processing") == 0
    assert await _outbox_rows(database, "prediction") == 1

    assert await OutboxRelay(database, bus, source=None).relay_once() == 1
    assert [e.id for e in _sent(bus)] == [e.id for e in mine + theirs]
    assert await _outbox_rows(database) == 0


async def test_relay_keeps_id_order_per_key_across_batches_and_transactions(
    database: Database, bus: FlakyBus
) -> None:
    events = [_event(symbol, n + 1) for n in range(6) for symbol in ("AAA", "BBB", "CCC")]
    for start in range(0, len(events), 4):
        await _commit_events(database, events[start : start + 4], source="orchestrator")
    relay = OutboxRelay(database, bus, source="orchestrator", batch_size=5)

    batches = []
    while sent := await relay.relay_once():
        batches.append(sent)

    assert batches == [5, 5, 5, 3]
    sent_events = _sent(bus)
    for symbol in ("AAA", "BBB", "CCC"):
        lookbacks = [e.payload["lookback_days"] for e in sent_events if e.symbol == symbol]
        assert lookbacks == [1, 2, 3, 4, 5, 6], symbol
    assert [e.id for e in sent_events] == [e.id for e in events]


async def test_stopping_the_relay_sends_what_is_committed(
    database: Database, bus: FlakyBus
) -> None:
    # A poll interval far longer than the test: once the relay has gone idle, only stop()
    # can send the row.
    relay = CountingRelay(database, bus, source="orchestrator", poll_seconds=3600)
    await relay.start()
    await eventually(lambda: relay.finished_rounds >= 1)
    envelope = _event("AAA")
    await _commit_events(database, [envelope], source="orchestrator")

    await relay.stop()

    assert [e.id for e in _sent(bus)] == [envelope.id]
    assert await _outbox_rows(database) == 0


async def test_a_commit_notified_while_an_empty_round_ends_is_relayed_without_waiting_a_poll(
    database: Database, bus: FlakyBus
) -> None:
    envelope = _event("AAA")

    class CommitMidRound(CountingRelay):
        """Another transaction commits and notifies after the first round found nothing, before
        that round has returned."""

        async def relay_once(self) -> int:
            sent = await super().relay_once()
            if self.finished_rounds == 1:
                await _commit_events(database, [envelope], source="orchestrator")
                self.notify()
            return sent

    # A poll interval far longer than the test: only the notify can bring the row out.
    relay = CommitMidRound(database, bus, source="orchestrator", poll_seconds=3600)
    await relay.start()
    try:
        await eventually(lambda: len(_sent(bus)) == 1, timeout=10)
    finally:
        await relay.stop()

    assert [e.id for e in _sent(bus)] == [envelope.id]


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=INTEGRATION)], indirect=True
)
async def test_two_relays_of_one_source_at_once_send_each_row_once_in_order(
    database: Database, bus: FlakyBus
) -> None:
    # Replicas of a service each run a relay; on PostgreSQL they take turns, so one cannot send
    # a key's later rows while the other still holds its earlier ones.
    # (SQLite has no row locks: the embedded default runs one relay per database.)
    events = [_event(f"S{i % 7}", i + 1) for i in range(60)]
    await _commit_events(database, events, source="processing")
    bus.delay = 0.02
    relays = [OutboxRelay(database, bus, source="processing", batch_size=7) for _ in range(2)]

    async def drain(relay: OutboxRelay) -> None:
        # A relay whose turn another has gets 0 and tries again, as its poll would.
        while await _outbox_rows(database, "processing"):
            if not await relay.relay_once():
                await asyncio.sleep(0.01)

    await asyncio.gather(*(drain(relay) for relay in relays))

    sent = _sent(bus)
    assert sorted(str(e.id) for e in sent) == sorted(str(e.id) for e in events)
    for symbol in {e.symbol for e in events}:
        mine = [e.payload["lookback_days"] for e in sent if e.symbol == symbol]
        assert mine == sorted(mine), symbol


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=INTEGRATION)], indirect=True
)
async def test_while_a_relay_has_its_turn_only_relays_of_other_sources_send(
    database: Database, bus: FlakyBus
) -> None:
    await _commit_events(database, [_event("AAA")], source="processing")
    await _commit_events(database, [_event("BBB")], source="prediction")
    busy = OutboxRelay(database, bus, source="processing")
    async with database.session() as turn:
        assert await busy._lock(turn)  # held until this transaction ends

        assert await OutboxRelay(database, bus, source="processing").relay_once() == 0
        assert await OutboxRelay(database, bus, source=None).relay_once() == 0
        assert await OutboxRelay(database, bus, source="prediction").relay_once() == 1

    assert await OutboxRelay(database, bus, source=None).relay_once() == 1
    assert [e.symbol for e in _sent(bus)] == ["BBB", "AAA"]


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=INTEGRATION)], indirect=True
)
async def test_a_key_keeps_its_order_when_transactions_commit_out_of_id_order(
    database: Database, bus: FlakyBus
) -> None:
    # The first transaction draws the lower id, the second commits first: a relay in plain id
    # order would send the second's row, then the first's, and a high-water mark would skip it.
    relay = OutboxRelay(database, bus, source="ingestion", settle_seconds=0.1)
    first, second = _event("AAA", 1), _event("AAA", 2)
    async with database.session() as early, database.session() as late:
        add_event(early, first, source="ingestion")
        await early.flush()
        add_event(late, second, source="ingestion")
        await late.flush()
        # Neither sees the other's uncommitted row: each finds its own id.
        first_id = (await early.execute(select(OutboxMessage.id))).scalar_one()
        second_id = (await late.execute(select(OutboxMessage.id))).scalar_one()
        await late.commit()

        assert await _outbox_rows(database, "ingestion") == 1  # the later row is visible...
        assert await relay.relay_once() == 0  # ...and held back behind the open transaction
        assert _sent(bus) == []

        await early.commit()

    async def drained() -> bool:
        await relay.relay_once()  # another server's writer may hold both back a moment
        return await _outbox_rows(database, "ingestion") == 0

    await eventually(drained)
    assert first_id < second_id
    assert [e.id for e in _sent(bus)] == [first.id, second.id]


async def test_relayed_event_reaches_a_subscriber_with_its_typed_payload(
    database: Database, make_bus: Callable[..., EventBus]
) -> None:
    bus = make_bus()
    received: list[tuple[Envelope, Payload]] = []

    async def handle(envelope: Envelope, payload: Payload) -> None:
        received.append((envelope, payload))

    bus.subscribe(Subscription(topic=TOPIC, group=f"{bus.topic_prefix}ingestion", handler=handle))
    await bus.start()
    envelope = _event("AAA", 42)
    await _commit_events(database, [envelope], source="orchestrator")

    assert await OutboxRelay(database, bus, source="orchestrator").relay_once() == 1

    await eventually(lambda: len(received) == 1)
    got, payload = received[0]
    assert got == envelope
    assert payload == IngestRequested(as_of=AS_OF, lookback_days=42)


async def test_relay_stop_ends_in_time_when_the_broker_never_answers(
    database: Database, bus: FlakyBus
) -> None:
    await _commit_events(database, [_event("AAA")], source="svc")
    bus.delay = 3600  # the send is in flight and nothing ever answers it
    relay = OutboxRelay(database, bus, source="svc", stop_seconds=0.5)
    await relay.start()
    await asyncio.sleep(0.2)

    started = asyncio.get_running_loop().time()
    await relay.stop()
    took = asyncio.get_running_loop().time() - started

    assert 0.5 <= took < 5
    assert await _outbox_rows(database, "svc") == 1  # kept for the next start


async def test_a_queued_message_is_relayed_with_its_headers_byte_for_byte(
    database: Database, bus: FlakyBus
) -> None:
    # A dead letter travels through the outbox: its x-dlq-* headers, and the original record's
    # own headers of any bytes, must reach the topic as they were queued.
    headers = (("trace", b"\x00\xff\xfe"), ("x-dlq-error", "KeyError: 'é'".encode()))
    letter = Outgoing("raw.ready.dlq", b"{}", "AAA", headers)
    async with database.session() as session:
        add_message(session, letter, source="processing")
        await session.commit()

    assert await OutboxRelay(database, bus, source="processing").relay_once() == 1

    [record] = bus.logs[bus.topic_name("raw.ready.dlq")]
    assert (record.key, record.value, record.headers) == ("AAA", b"{}", headers)
