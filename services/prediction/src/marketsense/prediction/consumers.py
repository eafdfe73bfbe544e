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
    shadow: LiveModel[OnnxPredictor] | None = None,
) -> list[Subscription]:
    """Prediction listens for processed features, one event per (run, symbol), and for
    moves of the aliases of the predictor it serves and shadow-scores."""

    async def predict(run_id: str, symbol: str, payload: FeaturesReady) -> None:
        await predict_symbol(
            runtime=runtime,
            holder=holder,
            threshold=threshold,
            run_id=run_id,
            symbol=symbol,
            event=payload,
            shadow=shadow.slot if shadow is not None else None,
        )

    return [
        stage_subscription(
            runtime, stage=Stage.PREDICT, service=service, accepts=FeaturesReady, work=predict
        ),
        live.subscription(service),
        *([shadow.subscription(service)] if shadow is not None else []),
    ]
