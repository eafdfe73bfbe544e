"""Prediction's event handlers."""

from __future__ import annotations

from marketsense.common.bus import Subscription
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import Envelope, FeaturesReady, Payload
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import fail_task
from marketsense.prediction.service import PredictorHolder, predict_symbol


def subscriptions(
    runtime: Runtime, holder: PredictorHolder, *, threshold: float
) -> list[Subscription]:
    """Prediction listens for processed features, one event per (run, symbol)."""

    async def on_features_ready(envelope: Envelope, payload: Payload) -> None:
        assert isinstance(payload, FeaturesReady)
        if envelope.run_id is None or envelope.symbol is None:
            raise NonRetryableError("features.ready needs run_id and symbol")
        await predict_symbol(
            runtime=runtime,
            holder=holder,
            threshold=threshold,
            run_id=envelope.run_id,
            symbol=envelope.symbol,
            event=payload,
        )

    async def on_dead_letter(envelope: Envelope, error: BaseException, attempts: int) -> None:
        await fail_task(runtime, envelope, stage=Stage.PREDICT, error=error, attempts=attempts)

    return [
        Subscription(
            topic=FeaturesReady.topic,
            group=runtime.group("prediction"),
            handler=on_features_ready,
            on_dead_letter=on_dead_letter,
            accepts=(FeaturesReady,),
        )
    ]
