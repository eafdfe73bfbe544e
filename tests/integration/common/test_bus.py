"""A broker that stops answering (its process frozen with SIGSTOP) does not wedge the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from marketsense.common.bus import Outgoing
from marketsense.common.bus.kafka import KafkaBus
from tests.conftest import INTEGRATION, infra

pytestmark = [INTEGRATION, pytest.mark.timeout(180)]


def _kafka_pid() -> int:
    path = Path(infra("INFRA_STATE_DIR")) / "kafka" / "kafka.pid"
    return int(path.read_text().split()[0])


@contextlib.contextmanager
def frozen_broker() -> Iterator[int]:
    """SIGSTOP the test broker; it always gets SIGCONT, even when the test fails."""
    pid = _kafka_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


async def _count(bootstrap: str, topic: str, value: bytes) -> int:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=5000)
        return sum(r.value == value for records in batches.values() for r in records)
    finally:
        await consumer.stop()


async def test_a_send_the_frozen_broker_never_answers_gets_a_new_producer_and_arrives(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = infra("MARKETSENSE_TEST_KAFKA")
    bus = KafkaBus(bootstrap_servers=bootstrap, topic_prefix=prefix, send_timeout=2)
    topic = bus.topic_name("stall")
    await bus.start()
    await bus.ensure_topics({topic})
    await bus.publish_many([Outgoing("stall", b"warm-up", "k")])
    first = bus._producer
    loop = asyncio.get_running_loop()
    try:
        with frozen_broker() as pid, caplog.at_level(logging.WARNING):
            loop.call_later(5, os.kill, pid, signal.SIGCONT)
            started = loop.time()
            await bus.publish_many([Outgoing("stall", b"during-the-stall", "k")])
            took = loop.time() - started
        replaced = bus._producer is not first
    finally:
        await bus.stop()

    assert took >= 2
    assert first is not None
    assert replaced
    assert "producer cannot send (no acknowledgement in 2 s)" in caplog.text
    # The old producer's request may still have landed after the thaw: at least once, at most twice.
    assert 1 <= await _count(bootstrap, topic, b"during-the-stall") <= 2
