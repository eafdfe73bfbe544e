"""Kafka bus throughput against plain aiokafka, side by side in one run.

Both sides publish N small events and consume them in one consumer group with manual offset
commits after each batch. Ours also validates every envelope and payload and runs a handler;
plain aiokafka only counts bytes. Prints events/s for both and the ratio.

    uv run python bench/bus_throughput.py --events 100000 --bootstrap 127.0.0.1:19092
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from marketsense.common.bus import Outgoing, Subscription
from marketsense.common.bus.kafka import KafkaBus
from marketsense.common.events import Envelope, IngestRequested, Payload

BATCH = 1000


def sample_events(count: int) -> list[Envelope]:
    """Small events: one IngestRequested per symbol-day, about 250 bytes each."""
    return [
        Envelope.wrap(
            IngestRequested(as_of=dt.date(2026, 11, 20), lookback_days=60),
            run_id="00000000-0000-0000-0000-000000000000",
            symbol=f"S{i % 5000:04d}",
        )
        for i in range(count)
    ]


async def run_ours(bootstrap: str, events: list[Envelope]) -> tuple[float, float]:
    """Publish and consume through KafkaBus; return (publish seconds, end-to-end seconds)."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    seen = 0
    done = asyncio.Event()

    async def handler(_envelope: Envelope, _payload: Payload) -> None:
        nonlocal seen
        seen += 1
        if seen == len(events):
            done.set()

    bus = KafkaBus(bootstrap_servers=bootstrap, topic_prefix=prefix)
    bus.subscribe(Subscription(topic=IngestRequested.topic, group=prefix + "g", handler=handler))
    await bus.start()
    messages = [Outgoing(IngestRequested.topic, e.to_bytes(), e.key) for e in events]
    started = time.perf_counter()
    for i in range(0, len(messages), BATCH):
        await bus.publish_many(messages[i : i + BATCH])
    published = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), timeout=600)
    total = time.perf_counter() - started
    await bus.stop()
    return published, total


async def run_plain(bootstrap: str, events: list[Envelope]) -> tuple[float, float]:
    """The same with plain aiokafka: same producer settings, batches and commits."""
    topic = f"bench{uuid.uuid4().hex[:8]}.plain"
    bus = KafkaBus(bootstrap_servers=bootstrap)
    await bus.ensure_topics({topic})
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=topic + ".g",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    await producer.start()
    await consumer.start()
    payloads = [(e.to_bytes(), (e.key or "").encode()) for e in events]
    seen = 0

    async def consume() -> None:
        nonlocal seen
        while seen < len(payloads):
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            for tp, records in batch.items():
                seen += sum(1 for r in records if r.value)
                await consumer.commit({tp: records[-1].offset + 1})

    consuming = asyncio.create_task(consume())
    started = time.perf_counter()
    for i in range(0, len(payloads), BATCH):
        futures = [
            await producer.send(topic, value, key=key) for value, key in payloads[i : i + BATCH]
        ]
        await asyncio.gather(*futures)
    published = time.perf_counter() - started
    await asyncio.wait_for(consuming, timeout=600)
    total = time.perf_counter() - started
    await consumer.stop()
    await producer.stop()
    return published, total


async def main() -> None:
    """Run both sides (plain first, then ours, then both again) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("MARKETSENSE_TEST_KAFKA", "127.0.0.1:19092")
    )
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    events = sample_events(args.events)
    rows = []
    for _ in range(args.rounds):
        for name, runner in (("plain aiokafka", run_plain), ("marketsense KafkaBus", run_ours)):
            published, total = await runner(args.bootstrap, events)
            rows.append((name, args.events / published, args.events / total))
            print(
                f"{name:22} publish {args.events / published:9.0f} ev/s   "
                f"publish+consume+commit {args.events / total:9.0f} ev/s",
                flush=True,
            )
    best = {name: max(r[2] for r in rows if r[0] == name) for name, _, _ in rows}
    ratio = best["marketsense KafkaBus"] / best["plain aiokafka"]
    print(
        json.dumps(
            {
                "events": args.events,
                "size_bytes": len(events[0].to_bytes()),
                "plain_events_per_s": round(best["plain aiokafka"]),
                "ours_events_per_s": round(best["marketsense KafkaBus"]),
                "ratio": round(ratio, 3),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}",
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
