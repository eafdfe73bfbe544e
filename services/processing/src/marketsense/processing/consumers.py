"""Processing's event handlers."""

from __future__ import annotations

from marketsense.common.bus import Subscription
from marketsense.common.events import RawDataReady
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import stage_subscription
from marketsense.models.live import LiveModel
from marketsense.models.sentiment import SentimentModel
from marketsense.processing.service import SentimentSlot, process_symbol


def subscriptions(
    runtime: Runtime,
    sentiment: SentimentSlot,
    live: LiveModel[SentimentModel],
    *,
    service: str,
    batch_size: int,
) -> list[Subscription]:
    """Processing listens for raw data, one event per (run, symbol), and for promotions of the
    sentiment model it serves."""

    async def process(run_id: str, symbol: str, payload: RawDataReady) -> None:
        await process_symbol(
            runtime=runtime,
            sentiment=sentiment,
            batch_size=batch_size,
            run_id=run_id,
            symbol=symbol,
            event=payload,
        )

    return [
        stage_subscription(
            runtime, stage=Stage.PROCESS, service=service, accepts=RawDataReady, work=process
        ),
        live.subscription(service),
    ]
