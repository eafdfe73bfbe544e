"""The event bus interface and the delivery rules both implementations share."""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from marketsense.common.errors import NonRetryableError
from marketsense.common.events import (
    PAYLOAD_TYPES,
    Envelope,
    Payload,
    UnreadableEvent,
    parse_event,
)
from marketsense.common.logs import log_context
from marketsense.common.metrics import (
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_PRODUCED,
    HANDLER_SECONDS,
)
from marketsense.common.outages import Dependency, DependencyWatch

log = logging.getLogger(__name__)

Headers = tuple[tuple[str, bytes], ...]
Handler = Callable[[Envelope, Payload], Awaitable[None]]
Step = Callable[[], Awaitable[None]]
RawHandler = Callable[["Record"], Awaitable[None]]
DeadLetterHook = Callable[[Envelope, BaseException, int], Awaitable[None]]
DeadLetterRecorder = Callable[[Envelope, BaseException, int, "Outgoing"], Awaitable[None]]

DLQ_SUFFIX = ".dlq"

P = TypeVar("P", bound=Payload)


class Record(NamedTuple):
    """One message as it sat on a topic (a named tuple: one is built per consumed event)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: Headers = ()

    def header(self, name: str) -> str | None:
        """A header's value as text, or None."""
        for key, value in self.headers:
            if key == name:
                return value.decode()
        return None


@dataclass(frozen=True)
class Outgoing:
    """A message to publish."""

    topic: str
    value: bytes
    key: str | None = None
    headers: Headers = ()


@dataclass
class Subscription:
    """A consumer group's handler for one topic (a logical name, without the prefix)."""

    topic: str
    group: str
    handler: Handler | None = None
    """Receives parsed events; unreadable ones are dead-lettered before it sees them."""
    raw_handler: RawHandler | None = None
    """Receives records as they are, for tools that read dead letters."""
    on_dead_letter: DeadLetterHook | None = None
    """Called after a parsed event was dead-lettered, so the owner can record the failure."""
    records_dead_letter: DeadLetterRecorder | None = None
    """Takes over sending a parsed event's dead letter (a message to a logical `.dlq` topic), so
    the owner can queue it in the outbox in the transaction that records the failure: then the
    dead letter exists if and only if the failure was recorded. `on_dead_letter` is not called."""
    accepts: tuple[type[Payload], ...] = field(default_factory=tuple)
    """Payload types the handler takes; others are dead-lettered. Empty means any."""

    @classmethod
    def of(
        cls,
        accepts: type[P],
        handler: Callable[[Envelope, P], Awaitable[None]],
        *,
        group: str,
        on_dead_letter: DeadLetterHook | None = None,
        records_dead_letter: DeadLetterRecorder | None = None,
    ) -> Subscription:
        """A handler of one payload type on its topic, called with the payload typed."""

        async def typed(envelope: Envelope, payload: Payload) -> None:
            # The bus dead-letters other types before the handler runs; this narrows the type.
            if not isinstance(payload, accepts):
                raise NonRetryableError(f"{envelope.type} is not {accepts.event_type}")
            await handler(envelope, payload)

        return cls(
            topic=accepts.topic,
            group=group,
            handler=typed,
            on_dead_letter=on_dead_letter,
            records_dead_letter=records_dead_letter,
            accepts=(accepts,),
        )


class EventBus(abc.ABC):
    """Publishes and consumes events with at-least-once delivery and dead-lettering."""

    def __init__(self, *, topic_prefix: str = "", max_attempts: int = 3, retry_base: float = 0.2):
        self.topic_prefix = topic_prefix
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.subscriptions: list[Subscription] = []
        self.dependencies = DependencyWatch()
        """Outages that pause consumers; the runtime adds the database and the object store."""
        self.dependencies.watch(Dependency.KAFKA, self.healthy)
        self._halted = asyncio.Event()
        """Set by `stop`: consumers waiting out an outage give up their record and end."""

    def topic_name(self, name: str) -> str:
        """Full topic name for a logical one."""
        return f"{self.topic_prefix}{name}"

    def subscribe(self, subscription: Subscription) -> None:
        """Register a handler; call before `start`."""
        if (subscription.handler is None) == (subscription.raw_handler is None):
            raise ValueError("a subscription takes exactly one of handler and raw_handler")
        self.subscriptions.append(subscription)

    async def publish(self, envelope: Envelope) -> None:
        """Publish one event to its type's topic, keyed by symbol."""
        await self.publish_many([outgoing_for(envelope)])

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Publish messages (topics are logical names) and wait until the bus holds them all."""
        full = [Outgoing(self.topic_name(m.topic), m.value, m.key, m.headers) for m in messages]
        await self._send(full)
        for topic, count in Counter(m.topic for m in messages).items():
            EVENTS_PRODUCED.labels(topic).inc(count)

    @abc.abstractmethod
    async def _send(self, messages: Sequence[Outgoing]) -> None:
        """Send messages to their full topic names and wait for the acknowledgements."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and start consuming every subscription."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Finish the in-flight batch, commit, and disconnect."""

    @abc.abstractmethod
    async def healthy(self) -> bool:
        """Whether the bus can publish right now."""

    async def deliver(self, subscription: Subscription, record: Record) -> None:
        """Hand one record to a subscription; dead-letter it if it cannot be handled."""
        logical = record.topic.removeprefix(self.topic_prefix)
        _child(EVENTS_CONSUMED, logical, subscription.group).inc()
        started = time.perf_counter()
        outcome = "ok"
        try:
            if subscription.raw_handler is not None:
                await self.through_outages(functools.partial(subscription.raw_handler, record))
                return
            outcome = await self._deliver_event(subscription, record)
        finally:
            _child(HANDLER_SECONDS, logical, subscription.group, outcome).observe(
                time.perf_counter() - started
            )

    async def _deliver_event(self, subscription: Subscription, record: Record) -> str:
        try:
            envelope, payload = parse_event(record.value)
            if subscription.accepts and not isinstance(payload, subscription.accepts):
                raise UnreadableEvent(
                    f"event type {envelope.type!r} does not belong on topic {record.topic!r}"
                )
        except UnreadableEvent as exc:
            await self.through_outages(
                functools.partial(self._dead_letter, record, exc, attempts=0)
            )
            return "unreadable"
        assert subscription.handler is not None
        with log_context(run_id=envelope.run_id, symbol=envelope.symbol):
            error, attempts = await self._attempt(subscription.handler, envelope, payload)
            if error is None:
                return "ok"
            log.warning("dead-lettering %s after %d attempt(s): %s", envelope.type, attempts, error)
            if subscription.records_dead_letter is not None:
                # Built once: a retry after an outage records the very same letter.
                letter = self.dead_letter_message(record, error, attempts=attempts)
                hook = functools.partial(
                    subscription.records_dead_letter, envelope, error, attempts, letter
                )
                await self.through_outages(hook)
                self._count_dead_letter(record, error)
                return "dead-lettered"
            await self.through_outages(
                functools.partial(self._dead_letter, record, error, attempts=attempts)
            )
            if subscription.on_dead_letter is not None:
                hook = functools.partial(subscription.on_dead_letter, envelope, error, attempts)
                await self.through_outages(hook)
            return "dead-lettered"

    async def _attempt(
        self, handler: Handler, envelope: Envelope, payload: Payload
    ) -> tuple[BaseException | None, int]:
        """Run a handler under the retry policy; return the final error (or None) and attempts.

        An attempt that fails because a dependency is unreachable is not counted: it is made again
        once the dependency is back, however long that takes.
        """
        try:
            await self.through_outages(functools.partial(handler, envelope, payload))
            return None, 1
        except NonRetryableError as exc:
            return exc, 1
        except Exception as exc:
            if self.max_attempts == 1:
                return exc, 1
        # Only a failed event pays for the retry machinery; the first try above is the hot path.
        attempts = 1
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts - 1),
                wait=wait_exponential_jitter(
                    multiplier=self.retry_base, jitter=self.retry_base, max=30
                ),
                # Exception only: tenacity would otherwise retry a CancelledError, swallowing
                # the cancellation and dead-lettering a record that never failed.
                retry=retry_if_exception_type(Exception)
                & retry_if_not_exception_type(NonRetryableError),
                before=_sleep_first(self.retry_base),
                reraise=False,
            ):
                with attempt:
                    attempts = 1 + attempt.retry_state.attempt_number
                    await self.through_outages(functools.partial(handler, envelope, payload))
            return None, attempts
        except RetryError as exc:
            return exc.last_attempt.exception() or exc, attempts
        except NonRetryableError as exc:
            return exc, attempts

    async def through_outages(self, step: Step) -> None:
        """Run a step; while it fails on an unreachable dependency, wait for it and run it again.

        Any other failure is raised: it is the event's, and spends one of its attempts.
        """
        while True:
            try:
                await step()
                return
            except Exception as exc:
                down = await self.dependencies.down(exc)
                if not down:
                    raise
            await self.wait_until_up(down)

    async def wait_until_up(self, down: list[Dependency]) -> None:
        """Wait until unreachable dependencies answer again; if the bus stops first, raise
        CancelledError, leaving the record in hand uncommitted for redelivery."""
        if not self._halted.is_set():
            back = asyncio.ensure_future(self.dependencies.wait_until_up(down))
            halted = asyncio.ensure_future(self._halted.wait())
            try:
                await asyncio.wait({back, halted}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (back, halted):
                    waiter.cancel()
                await asyncio.gather(back, halted, return_exceptions=True)
            if back.done() and not back.cancelled():
                return
        raise asyncio.CancelledError("the bus stopped while a dependency was unreachable")

    def dead_letter_message(
        self, record: Record, error: BaseException, *, attempts: int
    ) -> Outgoing:
        """A record's dead letter, to its topic's logical `.dlq`: value and key unchanged, with
        where it came from, why and after how many attempts in `x-dlq-*` headers."""
        reason = f"{type(error).__name__}: {error}"
        headers = (
            *(h for h in record.headers if not h[0].startswith("x-dlq-")),
            ("x-dlq-original-topic", record.topic.encode()),
            ("x-dlq-original-partition", str(record.partition).encode()),
            ("x-dlq-original-offset", str(record.offset).encode()),
            ("x-dlq-error", reason.encode()[:4000]),
            ("x-dlq-attempts", str(attempts).encode()),
            ("x-dlq-failed-at", dt.datetime.now(dt.UTC).isoformat().encode()),
        )
        logical = record.topic.removeprefix(self.topic_prefix)
        return Outgoing(logical + DLQ_SUFFIX, record.value, record.key, headers)

    async def _dead_letter(self, record: Record, error: BaseException, *, attempts: int) -> None:
        letter = self.dead_letter_message(record, error, attempts=attempts)
        await self._send(
            [Outgoing(self.topic_name(letter.topic), letter.value, letter.key, letter.headers)]
        )
        self._count_dead_letter(record, error)

    def _count_dead_letter(self, record: Record, error: BaseException) -> None:
        logical = record.topic.removeprefix(self.topic_prefix)
        EVENTS_DEAD_LETTERED.labels(logical, type(error).__name__).inc()


@functools.cache
def _child(metric: Any, *labels: str) -> Any:
    """A metric's labelled child, looked up once: the hot path handles every event."""
    return metric.labels(*labels)


def _sleep_first(delay: float) -> Callable[[RetryCallState], Awaitable[None]]:
    """A tenacity `before` hook that backs off before the first retry, as between later ones."""

    async def before(state: RetryCallState) -> None:
        if state.attempt_number == 1:
            await asyncio.sleep(delay)

    return before


def outgoing_for(envelope: Envelope) -> Outgoing:
    """The message that carries an envelope: its type's topic, keyed by symbol."""
    return Outgoing(PAYLOAD_TYPES[envelope.type].topic, envelope.to_bytes(), envelope.key)
