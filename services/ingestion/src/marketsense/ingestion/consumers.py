"""Ingestion's event handlers."""

from __future__ import annotations

from marketsense.common.bus import Subscription
from marketsense.common.events import IngestRequested
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import stage_subscription
from marketsense.ingestion.service import ingest_symbol
from marketsense.ingestion.sources.base import Source
from marketsense.ingestion.sources.checks import BarChecks


def subscriptions(
    runtime: Runtime, source: Source, checks: BarChecks | None = None
) -> list[Subscription]:
    """Ingestion listens for ingest requests, one per (run, symbol); `checks` (default: XNYS and
    default thresholds) notes what the fetched bars would make features get wrong."""

    async def ingest(run_id: str, symbol: str, payload: IngestRequested) -> None:
        await ingest_symbol(
            runtime=runtime,
            source=source,
            run_id=run_id,
            symbol=symbol,
            as_of=payload.as_of,
            lookback_days=payload.lookback_days,
            checks=checks,
            start=payload.start,
        )

    return [
        stage_subscription(
            runtime, stage=Stage.INGEST, service="ingestion", accepts=IngestRequested, work=ingest
        )
    ]
