"""One behavioural suite for the event bus, run on the in-process bus and on real Kafka."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from aiokafka.partitioner import murmur2
from prometheus_client import REGISTRY

from marketsense.common.bus import DLQ_SUFFIX, EventBus, Outgoing, Record, Subscription
from marketsense.common.bus.base import outgoing_for
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.events import (
    Envelope,
    IngestRequested,
    ObjectRef,
    Payload,
    RawDataReady,
)
from tests.conftest import eventually

AS_OF = dt.date(2026, 11, 20)
TOPIC = RawDataReady.topic
DLQ_TOPIC = TOPIC + DLQ_SUFFIX

MakeBus = Callable[..., EventBus]


def raw_ready(symbol: str, rows: int = 60, *, run_id: str = "run-1") -> Envelope:
    """A raw.ready event for a symbol; `rows` doubles as a sequence number."""
    ref = ObjectRef(uri=f"s3://bucket/raw/{symbol}.parquet", sha256="ab" * 32, size=10)
    return Envelope.wrap(
        RawDataReady(as_of=AS_OF, bars=ref, rows=rows), run_id=run_id, symbol=symbol
    )


def raw_bytes(envelope: Envelope, **overrides: object) -> bytes:
    """An envelope's JSON with some fields replaced."""
    data = json.loads(envelope.to_bytes())
    data.update(overrides)
    return json.dumps(data).encode()


@dataclass
class Collector:
    """Handlers that record what they saw."""

    events: list[tuple[Envelope, Payload]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    dead: list[tuple[Envelope, BaseException, int]] = field(default_factory=list)

    async def handle(self, envelope: Envelope, payload: Payload) -> None:
        self.events.append((envelope, payload))

    async def raw(self, record: Record) -> None:
        self.records.append(record)

    async def on_dead_letter(self, envelope: Envelope, error: BaseException, attempts: int) -> None:
        self.dead.append((envelope, error, attempts))

    def symbols(self) -> list[str | None]:
        return [envelope.symbol for envelope, _ in self.events]


def group(bus: EventBus, name: str) -> str:
    """A consumer group name no other test uses."""
    return f"{bus.topic_prefix}{name}"


def keyed(envelope: Envelope, key: str) -> Outgoing:
    """The message carrying an envelope, under a key of the test's choosing."""
    return Outgoing(TOPIC, envelope.to_bytes(), key=key)


def rows(payload: Payload) -> int:
    """The sequence number a raw.ready test event carries."""
    assert isinstance(payload, RawDataReady)
    return payload.rows


def consumer_task(bus: EventBus, name: str) -> asyncio.Task[None]:
    """The task consuming for a group: both buses run one per group, named after it."""
    tasks: list[asyncio.Task[None]] = bus._tasks  # type: ignore[attr-defined]
    [task] = [t for t in tasks if t.get_name() == name]
    return task


def read_dead_letters(bus: EventBus, reader: Collector | None = None) -> Collector:
    """Subscribe a raw reader (a new one unless given) to the test topic's dead letters."""
    reader = reader or Collector()
    bus.subscribe(
        Subscription(topic=DLQ_TOPIC, group=group(bus, "dlq-reader"), raw_handler=reader.raw)
    )
    return reader


def read_raw(bus: EventBus, topic: str = TOPIC) -> Collector:
    """Subscribe a raw reader to a topic, to see records as they sat there."""
    reader = Collector()
    bus.subscribe(Subscription(topic=topic, group=group(bus, "raw-reader"), raw_handler=reader.raw))
    return reader


async def test_published_event_arrives_keyed_by_symbol_with_its_typed_payload(
    make_bus: MakeBus,
) -> None:
    bus = make_bus()
    consumer = Collector()
    bus.subscribe(
        Subscription(topic=TOPIC, group=group(bus, "processing"), handler=consumer.handle)
    )
    raw = read_raw(bus)
    await bus.start()
    sent = raw_ready("AAPL", 61)

    await bus.publish(sent)

    await eventually(lambda: consumer.events and raw.records)
    [(envelope, payload)] = consumer.events
    assert envelope == sent
    assert isinstance(payload, RawDataReady)
    assert payload == RawDataReady.model_validate(sent.payload)
    assert payload.bars.sha256 == "ab" * 32
    [record] = raw.records
    assert record.topic == bus.topic_name(TOPIC) == f"{bus.topic_prefix}raw.ready"
    assert record.key == "AAPL"
    assert record.value == sent.to_bytes()


async def test_events_of_one_key_are_handled_in_publish_order(make_bus: MakeBus) -> None:
    bus = make_bus()
    consumer = Collector()
    bus.subscribe(
        Subscription(topic=TOPIC, group=group(bus, "processing"), handler=consumer.handle)
    )
    await bus.start()
    symbols = ("AAA", "BBB", "CCC", "DDD", "EEE")
    events = [raw_ready(symbol, n) for n in range(20) for symbol in symbols]

    # Half in one batch, half one by one: both paths must keep a key's order.
    await bus.publish_many([outgoing_for(e) for e in events[:50]])
    for envelope in events[50:]:
        await bus.publish(envelope)

    await eventually(lambda: len(consumer.events) >= len(events))
    assert sorted(str(e.id) for e, _ in consumer.events) == sorted(str(e.id) for e in events)
    for symbol in symbols:
        sequence = [rows(p) for e, p in consumer.events if e.symbol == symbol]
        assert sequence == list(range(20)), symbol


async def test_handler_raising_non_retryable_error_dead_letters_and_consumer_continues(
    make_bus: MakeBus,
) -> None:
    bus = make_bus()
    consumer = Collector()
    calls: list[str | None] = []

    async def handle(envelope: Envelope, payload: Payload) -> None:
        calls.append(envelope.symbol)
        if envelope.symbol == "BAD":
            raise NonRetryableError("bars for BAD are corrupt")
        await consumer.handle(envelope, payload)

    bus.subscribe(
        Subscription(
            topic=TOPIC,
            group=group(bus, "processing"),
            handler=handle,
            on_dead_letter=consumer.on_dead_letter,
        )
    )
    original = read_raw(bus)
    dead = read_dead_letters(bus)
    await bus.start()
    first, bad, good = raw_ready("FIRST"), raw_ready("BAD"), raw_ready("GOOD")

    # One key for all three: one partition, so the bad record sits between two good ones and
    # its offset is not 0.
    await bus.publish_many([keyed(first, "BAD"), keyed(bad, "BAD")])
    await bus.publish_many([keyed(good, "BAD")])

    await eventually(lambda: len(consumer.events) == 2 and dead.records)
    assert consumer.symbols() == ["FIRST", "GOOD"]
    assert calls.count("BAD") == 1, "a non-retryable error must not be retried"
    [letter] = dead.records
    [source] = [r for r in original.records if r.value == bad.to_bytes()]
    assert source.offset > 0
    assert letter.topic == bus.topic_name(DLQ_TOPIC)
    assert letter.key == "BAD"
    assert letter.value == bad.to_bytes()
    assert letter.header("x-dlq-original-topic") == bus.topic_name(TOPIC)
    assert letter.header("x-dlq-original-partition") == str(source.partition)
    assert letter.header("x-dlq-original-offset") == str(source.offset)
    assert letter.header("x-dlq-error") == "NonRetryableError: bars for BAD are corrupt"
    assert letter.header("x-dlq-attempts") == "1"
    failed_at = dt.datetime.fromisoformat(letter.header("x-dlq-failed-at") or "")
    assert abs(dt.datetime.now(dt.UTC) - failed_at) < dt.timedelta(minutes=5)
    [(dead_envelope, error, attempts)] = consumer.dead
    assert dead_envelope == bad
    assert isinstance(error, NonRetryableError)
    assert attempts == 1


async def test_non_retryable_error_on_a_retry_stops_retrying(make_bus: MakeBus) -> None:
    bus = make_bus(max_attempts=5)
    consumer = Collector()
    calls = 0

    async def handle(envelope: Envelope, payload: Payload) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryableError("store timed out")
        raise NonRetryableError("object is gone")

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

    await bus.publish(raw_ready("AAA"))

    await eventually(lambda: dead.records)
    assert calls == 2
    [letter] = dead.records
    assert letter.header("x-dlq-attempts") == "2"
    assert letter.header("x-dlq-error") == "NonRetryableError: object is gone"
    assert [attempts for _, _, attempts in consumer.dead] == [2]


async def test_retryable_error_that_succeeds_on_the_second_attempt_is_handled_once(
    make_bus: MakeBus,
) -> None:
    bus = make_bus(max_attempts=3)
    consumer = Collector()
    attempts: dict[str | None, int] = {}

    async def handle(envelope: Envelope, payload: Payload) -> None:
        attempts[envelope.symbol] = attempts.get(envelope.symbol, 0) + 1
        if envelope.symbol == "MARKER":
            raise NonRetryableError("marker")
        if attempts[envelope.symbol] == 1:
            raise RetryableError("database briefly away")
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
    flaky, marker = raw_ready("FLAKY"), raw_ready("MARKER")

    await bus.publish(flaky)
    # Same key as the flaky event, so it is handled after it and dead-lettered after any dead
    # letter of it: once the marker's dead letter is read, the flaky one would have been too.
    await bus.publish_many([keyed(marker, "FLAKY")])

    await eventually(lambda: dead.records)
    assert attempts["FLAKY"] == 2
    assert [e for e, _ in consumer.events] == [flaky]
    assert [r.value for r in dead.records] == [marker.to_bytes()]
    assert [e.symbol for e, _, _ in consumer.dead] == ["MARKER"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(
            RetryableError("database away"), "RetryableError: database away", id="retryable"
        ),
        pytest.param(KeyError("bug"), "KeyError: 'bug'", id="unexpected-bug"),
    ],
)
async def test_error_that_never_clears_is_dead_lettered_after_max_attempts(
    make_bus: MakeBus, error: Exception, reason: str
) -> None:
    bus = make_bus(max_attempts=3)
    consumer = Collector()
    calls: list[str | None] = []

    async def handle(envelope: Envelope, payload: Payload) -> None:
        calls.append(envelope.symbol)
        if envelope.symbol == "DOOMED":
            raise error
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
    doomed, after = raw_ready("DOOMED"), raw_ready("AFTER")

    await bus.publish(doomed)
    # Same key: it waits behind the doomed one, so handling it shows the consumer went on.
    await bus.publish_many([keyed(after, "DOOMED")])

    await eventually(lambda: consumer.events and dead.records)
    assert calls.count("DOOMED") == 3
    assert consumer.symbols() == ["AFTER"]
    [letter] = dead.records
    assert letter.value == doomed.to_bytes()
    assert letter.header("x-dlq-attempts") == "3"
    assert letter.header("x-dlq-error") == reason
    [(dead_envelope, dead_error, attempts)] = consumer.dead
    assert (dead_envelope, dead_error, attempts) == (doomed, error, 3)


def _unknown_type(envelope: Envelope) -> bytes:
    return raw_bytes(envelope, type="weather.changed")


def _wrong_version(envelope: Envelope) -> bytes:
    return raw_bytes(envelope, schema_version=99)


def _garbage(envelope: Envelope) -> bytes:
    return b"\x00\x9f definitely { not json"


def _not_an_envelope(envelope: Envelope) -> bytes:
    return b'{"hello": "world"}'


def _bad_payload(envelope: Envelope) -> bytes:
    return raw_bytes(envelope, payload={"as_of": "2026-11-20", "rows": -5})


def _wrong_payload_type(envelope: Envelope) -> bytes:
    # A well-formed event of a type this subscription does not accept.
    return Envelope.wrap(
        IngestRequested(as_of=AS_OF, lookback_days=5), run_id="run-1", symbol="AAA"
    ).to_bytes()


@pytest.mark.parametrize(
    ("make_value", "reason"),
    [
        pytest.param(_garbage, "UnreadableEvent: not JSON", id="garbage-bytes"),
        pytest.param(_not_an_envelope, "UnreadableEvent: not an event envelope", id="not-envelope"),
        pytest.param(
            _unknown_type,
            "UnreadableEvent: unknown event type 'weather.changed'",
            id="unknown-type",
        ),
        pytest.param(
            _wrong_version,
            "UnreadableEvent: raw.ready schema version 99 is not supported",
            id="wrong-schema-version",
        ),
        pytest.param(_bad_payload, "UnreadableEvent: bad raw.ready payload", id="bad-payload"),
        pytest.param(
            _wrong_payload_type,
            "UnreadableEvent: event type 'ingest.requested' does not belong on topic",
            id="payload-type-not-accepted",
        ),
    ],
)
async def test_unreadable_record_is_dead_lettered_with_a_reason_and_consumer_goes_on(
    make_bus: MakeBus, make_value: Callable[[Envelope], bytes], reason: str
) -> None:
    bus = make_bus()
    consumer = Collector()
    bus.subscribe(
        Subscription(
            topic=TOPIC,
            group=group(bus, "processing"),
            handler=consumer.handle,
            on_dead_letter=consumer.on_dead_letter,
            accepts=(RawDataReady,),
        )
    )
    dead = read_dead_letters(bus)
    await bus.start()
    value = make_value(raw_ready("AAA"))
    good = raw_ready("AAA", 61)

    # Same key: the good event sits behind the unreadable one on the same partition.
    await bus.publish_many([Outgoing(TOPIC, value, key="AAA")])
    await bus.publish(good)

    await eventually(lambda: consumer.events and dead.records)
    assert [e for e, _ in consumer.events] == [good]
    [letter] = dead.records
    assert letter.value == value
    assert letter.key == "AAA"
    assert (letter.header("x-dlq-error") or "").startswith(reason)
    assert letter.header("x-dlq-attempts") == "0"
    assert letter.header("x-dlq-original-topic") == bus.topic_name(TOPIC)
    assert consumer.dead == []


async def test_dead_letter_reader_sees_every_dead_letter_as_it_was(make_bus: MakeBus) -> None:
    bus = make_bus()

    async def refuse(envelope: Envelope, payload: Payload) -> None:
        raise NonRetryableError(f"refusing {envelope.symbol}")

    bus.subscribe(Subscription(topic=TOPIC, group=group(bus, "processing"), handler=refuse))
    dead = read_dead_letters(bus)
    await bus.start()
    events = [raw_ready(symbol) for symbol in ("AAA", "BBB", "CCC")]
    values = [e.to_bytes() for e in events] + [b"not json"]

    await bus.publish_many([Outgoing(TOPIC, v, key=f"K{i}") for i, v in enumerate(values)])

    await eventually(lambda: len(dead.records) >= len(values))
    assert sorted(r.value for r in dead.records) == sorted(values)
    assert {r.topic for r in dead.records} == {bus.topic_name(TOPIC) + DLQ_SUFFIX}
    errors = sorted(r.header("x-dlq-error") or "" for r in dead.records)
    assert errors[:3] == [f"NonRetryableError: refusing {s}" for s in ("AAA", "BBB", "CCC")]
    assert errors[3].startswith("UnreadableEvent: not JSON")


async def test_two_consumer_groups_each_get_every_event(make_bus: MakeBus) -> None:
    bus = make_bus()
    first, second = Collector(), Collector()
    bus.subscribe(Subscription(topic=TOPIC, group=group(bus, "processing"), handler=first.handle))
    bus.subscribe(Subscription(topic=TOPIC, group=group(bus, "monitoring"), handler=second.handle))
    await bus.start()
    events = [raw_ready(f"S{i}", i) for i in range(12)]

    await bus.publish_many([outgoing_for(e) for e in events])

    await eventually(lambda: len(first.events) >= 12 and len(second.events) >= 12)
    expected = sorted(str(e.id) for e in events)
    assert sorted(str(e.id) for e, _ in first.events) == expected
    assert sorted(str(e.id) for e, _ in second.events) == expected


async def test_record_whose_failure_cannot_be_recorded_is_offered_again_not_skipped(
    make_bus: MakeBus,
) -> None:
    bus = make_bus()
    consumer = Collector()
    hook_calls = 0

    async def handle(envelope: Envelope, payload: Payload) -> None:
        if envelope.symbol == "BAD":
            raise NonRetryableError("bars for BAD are corrupt")
        await consumer.handle(envelope, payload)

    async def on_dead_letter(envelope: Envelope, error: BaseException, attempts: int) -> None:
        nonlocal hook_calls
        hook_calls += 1
        if hook_calls == 1:
            raise ConnectionError("database away while recording the failure")
        await consumer.on_dead_letter(envelope, error, attempts)

    bus.subscribe(
        Subscription(
            topic=TOPIC,
            group=group(bus, "processing"),
            handler=handle,
            on_dead_letter=on_dead_letter,
        )
    )
    dead = read_dead_letters(bus)
    await bus.start()
    bad, good = raw_ready("BAD"), raw_ready("GOOD")

    await bus.publish_many([keyed(bad, "K"), keyed(good, "K")])

    await eventually(lambda: consumer.events)
    assert hook_calls == 2
    assert [e for e, _, _ in consumer.dead] == [bad]
    assert [e for e, _ in consumer.events] == [good]
    # At least once: the record was dead-lettered on each try.
    await eventually(lambda: len(dead.records) == 2)
    assert {r.value for r in dead.records} == {bad.to_bytes()}


async def test_consumer_cancelled_during_a_retry_leaves_the_record_for_redelivery(
    make_bus: MakeBus,
) -> None:
    # A shutdown that cancels consumers (the event loop closing, a supervisor's deadline) is
    # not a handler failure: the record must be offered again, not dead-lettered.
    consumer = Collector()
    calls = 0
    blocked = asyncio.Event()

    async def handle(envelope: Envelope, payload: Payload) -> None:
        nonlocal calls
        calls += 1
        if envelope.symbol == "MARKER":
            raise NonRetryableError("marker")
        if calls == 1:
            raise RetryableError("database briefly away")
        if calls == 2:
            blocked.set()
            await asyncio.Event().wait()  # until cancelled
        await consumer.handle(envelope, payload)

    def subscription(bus: EventBus) -> Subscription:
        return Subscription(
            topic=TOPIC,
            group=group(bus, "processing"),
            handler=handle,
            on_dead_letter=consumer.on_dead_letter,
        )

    first = make_bus(max_attempts=3)
    first.subscribe(subscription(first))
    dead = read_dead_letters(first)
    await first.start()
    event = raw_ready("AAA")
    await first.publish(event)
    await eventually(blocked.is_set)

    processing = consumer_task(first, group(first, "processing"))
    processing.cancel()
    await eventually(processing.done)
    await first.stop()
    second = make_bus()
    if second is not first:  # Kafka: a new consumer joins the group
        second.subscribe(subscription(second))
        read_dead_letters(second, dead)
    await second.start()

    await eventually(lambda: consumer.events)
    assert [e for e, _ in consumer.events] == [event]
    # Same key, so its dead letter lands after any (wrong) dead letter of the event above.
    await second.publish_many([keyed(raw_ready("MARKER"), "AAA")])
    await eventually(lambda: dead.records)
    assert [r.header("x-dlq-error") for r in dead.records] == ["NonRetryableError: marker"]
    assert [e.symbol for e, _, _ in consumer.dead] == ["MARKER"]


async def test_stop_waits_for_the_in_flight_record_to_finish(make_bus: MakeBus) -> None:
    bus = make_bus()
    entered, release = asyncio.Event(), asyncio.Event()
    finished: list[str | None] = []

    async def handle(envelope: Envelope, payload: Payload) -> None:
        entered.set()
        await release.wait()
        finished.append(envelope.symbol)

    bus.subscribe(Subscription(topic=TOPIC, group=group(bus, "processing"), handler=handle))
    await bus.start()
    await bus.publish(raw_ready("AAA"))
    await eventually(entered.is_set)

    stopping = asyncio.create_task(bus.stop())
    done, _ = await asyncio.wait({stopping}, timeout=0.5)
    assert not done, "stop() returned while a handler was still running"
    assert finished == []
    release.set()
    await stopping

    assert finished == ["AAA"]


async def test_consumer_stopped_mid_stream_and_restarted_in_its_group_loses_nothing(
    make_bus: MakeBus,
) -> None:
    handled: list[str] = []

    async def handle(envelope: Envelope, payload: Payload) -> None:
        # Slow enough that stop() lands in the middle of the stream.
        await asyncio.sleep(0.002)
        handled.append(str(envelope.id))

    def subscription(bus: EventBus) -> Subscription:
        return Subscription(topic=TOPIC, group=group(bus, "processing"), handler=handle)

    first = make_bus()
    first.subscribe(subscription(first))
    await first.start()
    events = [raw_ready(f"S{i % 16:02d}", i) for i in range(1500)]
    await first.publish_many([outgoing_for(e) for e in events])
    await eventually(lambda: len(handled) >= 100)

    await first.stop()

    handled_by_first = len(handled)
    assert handled_by_first < len(events), "the stream ended before stop(); nothing was tested"
    second = make_bus()
    if second is not first:  # Kafka: a new consumer process joins the same group
        second.subscribe(subscription(second))
    await second.start()
    await eventually(lambda: set(handled) >= {str(e.id) for e in events})
    assert len(handled) > handled_by_first
    # A clean stop commits what it handled, so the new consumer starts after it.
    assert len(handled) == len(set(handled)) == len(events)


async def test_consumer_lag_gauge_counts_unhandled_records_and_returns_to_zero(
    make_bus: MakeBus,
) -> None:
    bus = make_bus()
    handled: list[int] = []

    async def slow(envelope: Envelope, payload: Payload) -> None:
        await asyncio.sleep(0.25)  # a handler that costs time, so records queue behind it
        handled.append(rows(payload))

    name = group(bus, "processing")
    bus.subscribe(Subscription(topic=TOPIC, group=name, handler=slow))
    await bus.start()
    labels = {"group": name, "topic": bus.topic_name(TOPIC)}
    seen: list[float] = []

    def lag() -> float:
        return REGISTRY.get_sample_value("marketsense_consumer_lag", labels) or 0.0

    for n in range(12):
        await bus.publish(raw_ready("AAA", n))

    def queued() -> bool:
        seen.append(lag())
        return max(seen) >= 5

    await eventually(queued, timeout=30, interval=0.05)
    await eventually(lambda: len(handled) == 12 and lag() == 0, timeout=30)
    assert handled == list(range(12))


async def test_kafka_handles_partitions_side_by_side_and_each_in_order(
    make_bus: MakeBus, bus_kind: str
) -> None:
    if bus_kind != "kafka":
        pytest.skip("the in-process bus keeps each topic in one ordered log, like one partition")
    bus = make_bus()
    # AAA and CCC land on different partitions of 4 (murmur2 of the key, as Kafka's producer).
    assert (murmur2(b"AAA") & 0x7FFFFFFF) % 4 != (murmur2(b"CCC") & 0x7FFFFFFF) % 4
    started = {"AAA": asyncio.Event(), "CCC": asyncio.Event()}
    handled: list[tuple[str | None, int]] = []

    async def handle(envelope: Envelope, payload: Payload) -> None:
        symbol = envelope.symbol or ""
        if rows(payload) == 0:
            # Each first record waits until the other partition's has started: handled one
            # partition after the other, neither would ever finish.
            started[symbol].set()
            other = started["CCC" if symbol == "AAA" else "AAA"]
            await asyncio.wait_for(other.wait(), timeout=20)
        handled.append((symbol, rows(payload)))

    # Everything is on the topic before the consumer starts, so its first fetch brings both
    # partitions' records at once.
    producer = make_bus()
    await producer.start()
    await producer.publish_many(
        [outgoing_for(raw_ready(s, n)) for s, n in (("AAA", 0), ("AAA", 1), ("CCC", 0))]
    )
    bus.subscribe(Subscription(topic=TOPIC, group=group(bus, "processing"), handler=handle))
    await bus.start()

    await eventually(lambda: len(handled) == 3, timeout=30)
    assert [entry for entry in handled if entry[0] == "AAA"] == [("AAA", 0), ("AAA", 1)]
    assert ("CCC", 0) in handled
