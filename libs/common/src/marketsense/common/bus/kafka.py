"""Kafka event bus on aiokafka: manual commits after handling, symbol as key, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from marketsense.common.bus import kafka_topics
from marketsense.common.bus.base import DLQ_SUFFIX, EventBus, Outgoing, Record, Subscription
from marketsense.common.bus.topics import Mismatch, TopicPolicy
from marketsense.common.cancelling import wait_ended
from marketsense.common.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)

PRODUCER_STATE_ERRORS = (
    OutOfOrderSequenceNumber,
    InvalidProducerEpoch,
    UnknownProducerId,
    ProducerFenced,
)
"""Errors after which an idempotent producer cannot send again and must be replaced."""

SEND_TIMEOUT_SECONDS = 120.0
"""Longest wait for the broker to acknowledge a batch. aiokafka's own timeouts (40 s) end a
plain outage sooner; a send still waiting after this has a wedged client, which is replaced."""

LAG_REFRESH_SECONDS = 1.0
"""How often a consumer recomputes its lag gauge: cheap, but not worth doing per batch."""


class KafkaBus(EventBus):
    """One idempotent producer, and one consumer per consumer group."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic_prefix: str = "",
        max_attempts: int = 3,
        retry_base: float = 0.2,
        topic_policy: TopicPolicy | None = None,
        client_id: str = "marketsense",
        send_timeout: float = SEND_TIMEOUT_SECONDS,
    ):
        super().__init__(
            topic_prefix=topic_prefix, max_attempts=max_attempts, retry_base=retry_base
        )
        self.bootstrap_servers = bootstrap_servers
        self.topic_policy = topic_policy or TopicPolicy.defaults()
        self.client_id = client_id
        self.send_timeout = send_timeout
        self._producer: AIOKafkaProducer | None = None
        self._consumers: list[AIOKafkaConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._replacing = asyncio.Lock()

    async def start(self) -> None:
        """Create the subscribed topics, start the producer and one consumer per group."""
        self._stopping.clear()
        self._halted.clear()
        self._producer = await self._new_producer()
        topics = {self.topic_name(s.topic) for s in self.subscriptions}
        await self.ensure_topics(topics | {t + DLQ_SUFFIX for t in topics})
        groups: dict[str, list[Subscription]] = defaultdict(list)
        for sub in self.subscriptions:
            groups[sub.group].append(sub)
        for group, subs in groups.items():
            consumer = AIOKafkaConsumer(
                *(self.topic_name(s.topic) for s in subs),
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=500,
            )
            await consumer.start()
            self._consumers.append(consumer)
            by_topic = {self.topic_name(s.topic): s for s in subs}
            self._tasks.append(asyncio.create_task(self._consume(consumer, by_topic), name=group))

    async def ensure_topics(self, topics: set[str]) -> list[Mismatch]:
        """Create the missing topics (full names) as the topic policy says; warn about and
        return how the existing ones differ from it."""
        return await kafka_topics.ensure_topics(
            bootstrap_servers=self.bootstrap_servers,
            policy=self.topic_policy,
            topics={t: t.removeprefix(self.topic_prefix) for t in topics},
        )

    async def _consume(self, consumer: AIOKafkaConsumer, by_topic: dict[str, Subscription]) -> None:
        lag = _LagReport(consumer, next(iter(by_topic.values())).group, set(by_topic))
        while not self._stopping.is_set():
            try:
                batch = await consumer.getmany(timeout_ms=200, max_records=500)
            except KafkaError as exc:
                # An unreachable broker is reported once by the watch, not once per fetch.
                down = await self.dependencies.down(exc)
                if down:
                    await self.wait_until_up(down)
                else:
                    log.warning("fetch failed, retrying: %s", exc)
                    await asyncio.sleep(1)
                continue
            # Partitions are handled side by side, each in order: a symbol always maps to one
            # partition, so its events stay in order while one symbol's wait on the database or
            # the object store no longer holds up the symbols of the other partitions.
            await asyncio.gather(
                *(
                    self._handle_partition(consumer, tp, records, by_topic, lag)
                    for tp, records in batch.items()
                )
            )
            await lag.refresh()

    async def _handle_partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        by_topic: dict[str, Subscription],
        lag: _LagReport,
    ) -> None:
        done = 0
        for r in records:
            record = Record(
                r.topic,
                r.partition,
                r.offset,
                r.key.decode() if r.key is not None else None,
                r.value or b"",
                tuple(r.headers),
            )
            lag.handled[tp] = r.offset  # the record in hand still counts as lag
            try:
                await self.deliver(by_topic[r.topic], record)
            except Exception:
                # Not even dead-lettering worked (broker or database away): commit what is
                # done and read this record again, so nothing is skipped.
                log.exception("could not handle or dead-letter offset %d; will retry", r.offset)
                consumer.seek(tp, r.offset)
                await asyncio.sleep(self.retry_base * 5)
                break
            done = r.offset + 1
            lag.handled[tp] = done
            await lag.refresh()
        if done:
            await self._commit(consumer, tp, done)

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        try:
            await consumer.commit({tp: offset})
        except KafkaError as exc:
            # The records were handled and handlers are idempotent: a redelivery is harmless.
            log.warning("offset commit failed (records may be redelivered): %s", exc)

    async def _new_producer(self) -> AIOKafkaProducer:
        """A started idempotent producer: every write acknowledged by all in-sync replicas."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
        )
        await producer.start()
        return producer

    async def _send(self, messages: Sequence[Outgoing]) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("the Kafka bus is not started")
        try:
            await asyncio.wait_for(self._send_with(producer, messages), self.send_timeout)
        except (*PRODUCER_STATE_ERRORS, TimeoutError) as exc:
            # A broker that restarted may have lost the producer's sequence state, or a client
            # waits on a broker that will never answer it: this producer can never send again. A
            # new one gets a new producer id and connections; resending is safe because every
            # consumer is idempotent.
            reason = str(exc) or f"no acknowledgement in {self.send_timeout:g} s"
            log.warning("producer cannot send (%s); starting a new producer", reason)
            async with self._replacing:
                current = self._producer
                if current is None:
                    raise
                if current is producer:  # not replaced by a concurrent send already
                    current = self._producer = await self._new_producer()
                    with contextlib.suppress(KafkaError, TimeoutError):
                        await asyncio.wait_for(producer.stop(), self.send_timeout)
            await asyncio.wait_for(self._send_with(current, messages), self.send_timeout)

    @staticmethod
    async def _send_with(producer: AIOKafkaProducer, messages: Sequence[Outgoing]) -> None:
        futures = [
            await producer.send(
                m.topic,
                m.value,
                key=m.key.encode() if m.key is not None else None,
                headers=list(m.headers) or None,
            )
            for m in messages
        ]
        await asyncio.gather(*futures)

    async def stop(self) -> None:
        """Finish the in-flight batch of every consumer, commit, and disconnect.

        A consumer waiting out an outage stops at once; its record is redelivered later.
        """
        self._stopping.set()
        self._halted.set()
        for task in self._tasks:
            await wait_ended(task)
        for consumer in self._consumers:
            await consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        self._tasks.clear()
        self._consumers.clear()
        self._producer = None

    async def healthy(self) -> bool:
        """Whether the broker answers a metadata request within two seconds."""
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), timeout=2)
        except (TimeoutError, KafkaError, OSError):
            return False
        return True


class _LagReport:
    """A consumer group's lag gauge: high watermark minus the offset handled, per topic."""

    def __init__(self, consumer: AIOKafkaConsumer, group: str, topics: set[str]):
        self.consumer = consumer
        self.group = group
        self.topics = topics
        self.handled: dict[TopicPartition, int] = {}
        """Next offset to handle per partition. The consumer's own position runs ahead of it:
        it moves when a batch is fetched, not when its records are handled."""
        self._due = 0.0

    async def refresh(self) -> None:
        """Recompute the gauge if it is older than `LAG_REFRESH_SECONDS`."""
        if time.monotonic() < self._due:
            return
        self._due = time.monotonic() + LAG_REFRESH_SECONDS
        held = self.consumer.assignment()
        # A partition a rebalance took away is another replica's to report.
        self.handled = {tp: offset for tp, offset in self.handled.items() if tp in held}
        lag = dict.fromkeys(self.topics, 0)
        for tp in held:
            # The high watermark comes with every fetch response; None before the first one.
            highwater = self.consumer.highwater(tp)
            if highwater is None or tp.topic not in lag:
                continue
            offset = self.handled.get(tp)
            if offset is None:
                try:
                    offset = await self.consumer.position(tp)
                except KafkaError:
                    continue  # the partition is moving; the next refresh counts it
            lag[tp.topic] += max(highwater - offset, 0)
        for topic, records in lag.items():
            CONSUMER_LAG.labels(group=self.group, topic=topic).set(records)
