"""The delivery rules of `EventBus` that every adapter shares, run on the in-process bus and on
real Kafka: retries, dead letters and their headers, unreadable records, and cancellation."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest

from marketsense.common.bus import DLQ_SUFFIX, EventBus, Outgoing, Subscription
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.events import Envelope, IngestRequested, Payload, RawDataReady
from tests.behaviour.common.bus_support import (
    AS_OF,
    DLQ_TOPIC,
    TOPIC,
    Collector,
    MakeBus,
    consumer_task,
    group,
    keyed,
    raw_bytes,
    raw_ready,
    read_dead_letters,
    read_raw,
)
from tests.conftest import eventually


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
