"""Prediction's event handlers."""

from __future__ import annotations

from marketsense.common.bus import Subscription
from marketsense.common.events import FeaturesReady
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import stage_subscription
from marketsense.models.live import LiveModel
from marketsense.models.predictor import OnnxPredictor
from marketsense.prediction.service import PredictorHolder, predict_symbol


def subscriptions(
    runtime: Runtime,
    holder: PredictorHolder,
    live: LiveModel[OnnxPredictor],
    *,
    service: str,
    threshold: float,
) -> list[Subscription]:
    """Prediction listens for processed features, one event per (run, symbol), and for
    promotions of the predictor it serves."""

    async def predict(run_id: str, symbol: str, payload: FeaturesReady) -> None:
        await predict_symbol(
            runtime=runtime,
            holder=holder,
            threshold=threshold,
            run_id=run_id,
            symbol=symbol,
            event=payload,
        )

    return [
        stage_subscription(
            runtime, stage=Stage.PREDICT, service=service, accepts=FeaturesReady, work=predict
        ),
        live.subscription(service),
    ]
