"""Consumers under an infrastructure outage, on the in-process bus and on real Kafka: they wait
for the dependency and handle the same event once it is back, spending none of its attempts."""

from __future__ import annotations

import asyncio

import sqlalchemy.exc

from marketsense.common.bus import EventBus, Record, Subscription
from marketsense.common.errors import RetryableError
from marketsense.common.events import Envelope, Payload
from marketsense.common.outages import Dependency
from tests.behaviour.common.bus_support import (
    TOPIC,
    Collector,
    MakeBus,
    consumer_task,
    group,
    raw_ready,
    read_dead_letters,
)
from tests.conftest import eventually


class FlakyDatabase:
    """A database a test takes down and brings back: its probe, and the error queries meet."""

    def __init__(self) -> None:
        self.up = True
        self.probes = 0

    async def probe(self) -> bool:
        """What the runtime's `SELECT 1` check would answer."""
        self.probes += 1
        return self.up

    def query(self) -> None:
        """Fail as a statement on a dead connection does while the database is down."""
        if not self.up:
            refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, refused)


def watch_database(bus: EventBus, database: FlakyDatabase) -> None:
    """Let the bus probe the test's database, with back-off short enough for a test."""
    bus.dependencies.watch(Dependency.DATABASE, database.probe)
    bus.dependencies.backoff_initial = 0.02
    bus.dependencies.backoff_max = 0.1
    bus.dependencies.probe_reuse = 0


async def test_an_outage_longer_than_every_retry_spends_no_attempt_and_dead_letters_nothing(
    make_bus: MakeBus,
) -> None:
    bus = make_bus(max_attempts=3)
    database = FlakyDatabase()
    watch_database(bus, database)
    consumer = Collector()
    calls = 0

    async def handle(envelope: Envelope, payload: Payload) -> None:
        nonlocal calls
        calls += 1
        database.query()
        await consumer.handle(envelope, payload)

    bus.subscribe(
        Subscription(
            topic=TOPIC,
            group=group(bus, "processing"),
            handler=handle,
            on_dead_letter=consumer.on_dead_letter,
        )
    )
    dead = read_dead_letters(bus)
    await bus.start()
    database.up = False
    waiting = raw_ready("WAITS")

    await bus.publish(waiting)
    # Many times the retry policy's three attempts, and many probes, before it comes back.
    await eventually(lambda: database.probes >= 10)
    assert calls == 1, "no attempt is made while the probe finds the database down"
    assert consumer.events == []
    database.up = True

    await eventually(lambda: consumer.events)
    assert [e for e, _ in consumer.events] == [waiting]
    assert calls == 2
    assert consumer.dead == []
    # The event was handled, so a dead letter of it would have been sent before: none was.
    await asyncio.sleep(0.5)
    assert dead.records == []


async def test_an_error_that_looks_like_an_outage_while_the_probe_answers_spends_attempts(
    make_bus: MakeBus,
) -> None:
    # A data source timing out raises the same builtin TimeoutError as a dead database socket;
    # the probe tells them apart, so the event still fails after its attempts.
    bus = make_bus(max_attempts=3)
    database = FlakyDatabase()
    watch_database(bus, database)
    consumer = Collector()

    async def handle(envelope: Envelope, payload: Payload) -> None:
        raise RetryableError("source timed out") from TimeoutError()

    bus.subscribe(
        Subscription(
            topic=TOPIC,
            group=group(bus, "processing"),
            handler=handle,
            on_dead_letter=consumer.on_dead_letter,
        )
    )
    dead = read_dead_letters(bus)
    await bus.start()

    await bus.publish(raw_ready("SOURCE"))

    await eventually(lambda: dead.records)
    assert [r.header("x-dlq-attempts") for r in dead.records] == ["3"]
    assert [attempts for _, _, attempts in consumer.dead] == [3]
    assert database.probes >= 3


async def test_a_dead_letter_reader_waits_out_a_database_outage_without_losing_the_record(
    make_bus: MakeBus,
) -> None:
    bus = make_bus()
    database = FlakyDatabase()
    watch_database(bus, database)
    indexed: list[Record] = []

    async def index(record: Record) -> None:
        database.query()
        indexed.append(record)

    bus.subscribe(Subscription(topic=TOPIC, group=group(bus, "index"), raw_handler=index))
    await bus.start()
    database.up = False

    await bus.publish(raw_ready("LETTER"))
    await eventually(lambda: database.probes >= 5)
    database.up = True

    await eventually(lambda: indexed)
    assert [r.key for r in indexed] == ["LETTER"]


async def test_a_consumer_waiting_for_a_dependency_stops_when_cancelled(
    make_bus: MakeBus,
) -> None:
    bus = make_bus()
    database = FlakyDatabase()
    watch_database(bus, database)

    async def handle(envelope: Envelope, payload: Payload) -> None:
        database.query()

    bus.subscribe(Subscription(topic=TOPIC, group=group(bus, "processing"), handler=handle))
    await bus.start()
    database.up = False
    await bus.publish(raw_ready("STUCK"))
    await eventually(lambda: database.probes >= 3)

    consumer = consumer_task(bus, group(bus, "processing"))
    consumer.cancel()

    await asyncio.wait_for(asyncio.wait([consumer]), timeout=2)
    assert consumer.cancelled()


async def test_stopping_the_bus_ends_a_consumer_waiting_out_an_outage(make_bus: MakeBus) -> None:
    bus = make_bus()
    database = FlakyDatabase()
    watch_database(bus, database)

    async def handle(envelope: Envelope, payload: Payload) -> None:
        database.query()

    bus.subscribe(Subscription(topic=TOPIC, group=group(bus, "processing"), handler=handle))
    await bus.start()
    database.up = False
    await bus.publish(raw_ready("STUCK"))
    await eventually(lambda: database.probes >= 3)

    # A shutdown must not wait for the database: the record stays uncommitted instead.
    await asyncio.wait_for(bus.stop(), timeout=5)
