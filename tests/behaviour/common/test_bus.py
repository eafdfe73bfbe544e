"""One behavioural suite for the event bus, run on the in-process bus and on real Kafka: how
events travel (keys, order, consumer groups, stopping and restarting, lag).

The rules every adapter shares for failing and unreadable events are in `bus/test_base.py`."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.partitioner import murmur2
from prometheus_client import REGISTRY

from marketsense.common.bus import EventBus, Subscription
from marketsense.common.bus.base import outgoing_for
from marketsense.common.events import Envelope, Payload, RawDataReady
from tests.behaviour.common.bus_support import (
    TOPIC,
    Collector,
    MakeBus,
    group,
    raw_ready,
    read_raw,
    rows,
)
from tests.conftest import eventually


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
