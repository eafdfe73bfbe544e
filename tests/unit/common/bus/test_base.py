"""The bus's plain parts: records' headers, subscriptions, and the message an event travels in."""

from __future__ import annotations

import datetime as dt

import pytest

from marketsense.common.bus import InProcessBus, Outgoing, Record, Subscription, outgoing_for
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import Envelope, IngestRequested, RunStateChanged

AS_OF = dt.date(2026, 11, 20)


async def ignore(envelope: Envelope, payload: object) -> None:
    """A handler that does nothing."""


async def ignore_record(record: Record) -> None:
    """A raw handler that does nothing."""


def test_a_header_is_read_as_text_and_a_missing_one_is_none() -> None:
    record = Record(
        "raw.ready.dlq",
        0,
        7,
        "AAPL",
        b"{}",
        (("x-dlq-error", "KeyError: 'é'".encode()), ("x-dlq-attempts", b"3")),
    )

    assert record.header("x-dlq-error") == "KeyError: 'é'"
    assert record.header("x-dlq-attempts") == "3"
    assert record.header("x-dlq-failed-at") is None
    assert Record("t", 0, 0, None, b"").header("x-dlq-error") is None


def test_an_event_travels_on_its_types_topic_keyed_by_symbol_else_run() -> None:
    by_symbol = Envelope.wrap(
        IngestRequested(as_of=AS_OF, lookback_days=5), run_id="r1", symbol="A"
    )
    by_run = Envelope.wrap(
        RunStateChanged(from_state="RUNNING", to_state="SUCCESS", as_of=AS_OF), run_id="r1"
    )

    assert outgoing_for(by_symbol) == Outgoing("ingest.requested", by_symbol.to_bytes(), "A")
    assert outgoing_for(by_run) == Outgoing("run.state-changed", by_run.to_bytes(), "r1")


@pytest.mark.parametrize(
    ("handler", "raw_handler"),
    [(None, None), (ignore, ignore_record)],
    ids=["neither", "both"],
)
def test_a_subscription_takes_exactly_one_kind_of_handler(
    handler: object, raw_handler: object
) -> None:
    bus = InProcessBus()
    subscription = Subscription(topic="raw.ready", group="g")
    subscription.handler = handler  # type: ignore[assignment]
    subscription.raw_handler = raw_handler  # type: ignore[assignment]

    with pytest.raises(ValueError, match="exactly one of handler and raw_handler"):
        bus.subscribe(subscription)
    assert bus.subscriptions == []


def test_topic_names_get_the_deployments_prefix() -> None:
    assert InProcessBus(topic_prefix="staging.").topic_name("raw.ready") == "staging.raw.ready"
    assert InProcessBus().topic_name("raw.ready") == "raw.ready"


async def test_a_typed_subscription_hands_its_type_over_and_refuses_others() -> None:
    seen: list[IngestRequested] = []

    async def handle(envelope: Envelope, payload: IngestRequested) -> None:
        seen.append(payload)

    subscription = Subscription.of(IngestRequested, handle, group="ingestion")
    request = IngestRequested(as_of=AS_OF, lookback_days=5)
    other = RunStateChanged(from_state="RUNNING", to_state="SUCCESS", as_of=AS_OF)
    assert subscription.handler is not None

    await subscription.handler(Envelope.wrap(request, run_id="r1", symbol="A"), request)
    with pytest.raises(NonRetryableError, match=r"^run\.state-changed is not ingest\.requested$"):
        await subscription.handler(Envelope.wrap(other, run_id="r1"), other)

    assert seen == [request]
    assert (subscription.topic, subscription.group) == ("ingest.requested", "ingestion")
    assert subscription.accepts == (IngestRequested,)
