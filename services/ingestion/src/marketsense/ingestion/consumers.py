"""Ingestion's event handlers."""

from __future__ import annotations

from marketsense.common.bus import Subscription
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import Envelope, IngestRequested, Payload
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import fail_task
from marketsense.ingestion.service import ingest_symbol
from marketsense.ingestion.source import BarSource


def subscriptions(runtime: Runtime, source: BarSource) -> list[Subscription]:
    """Ingestion listens for ingest requests, one per (run, symbol)."""

    async def on_ingest_requested(envelope: Envelope, payload: Payload) -> None:
        assert isinstance(payload, IngestRequested)
        if envelope.run_id is None or envelope.symbol is None:
            raise NonRetryableError("ingest.requested needs run_id and symbol")
        await ingest_symbol(
            runtime=runtime,
            source=source,
            run_id=envelope.run_id,
            symbol=envelope.symbol,
            as_of=payload.as_of,
            lookback_days=payload.lookback_days,
        )

    async def on_dead_letter(envelope: Envelope, error: BaseException, attempts: int) -> None:
        await fail_task(runtime, envelope, stage=Stage.INGEST, error=error, attempts=attempts)

    return [
        Subscription(
            topic=IngestRequested.topic,
            group=runtime.group("ingestion"),
            handler=on_ingest_requested,
            on_dead_letter=on_dead_letter,
            accepts=(IngestRequested,),
        )
    ]
