"""What the event bus suites share: test events, handlers that record what they saw, and
readers of a topic and its dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from marketsense.common.bus import DLQ_SUFFIX, EventBus, Outgoing, Record, Subscription
from marketsense.common.events import Envelope, ObjectRef, Payload, RawDataReady

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
        """Keep a parsed event."""
        self.events.append((envelope, payload))

    async def raw(self, record: Record) -> None:
        """Keep a record as it sat on its topic."""
        self.records.append(record)

    async def on_dead_letter(self, envelope: Envelope, error: BaseException, attempts: int) -> None:
        """Keep a dead-lettered event with its error and attempts."""
        self.dead.append((envelope, error, attempts))

    def symbols(self) -> list[str | None]:
        """The symbols of the kept events, in the order they were handled."""
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
