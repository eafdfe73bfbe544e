"""The prediction service's app."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from marketsense.common.app import Component, build_service_app
from marketsense.common.request_guard import BodyLimit
from marketsense.common.runtime import Runtime
from marketsense.models.live import LiveModel
from marketsense.models.predictor import OnnxPredictor, warm_up_predictor
from marketsense.prediction.config import PredictionSettings
from marketsense.prediction.consumers import subscriptions
from marketsense.prediction.deps import Serving
from marketsense.prediction.latest_cache import ResponseCache
from marketsense.prediction.rescoring import Rescorer
from marketsense.prediction.service import PredictorHolder
from marketsense.prediction.views import describe_row_limit, predict, predict_body_bytes, router

log = logging.getLogger(__name__)


def create_component(runtime: Runtime, settings: PredictionSettings) -> Component:
    """Prediction's consumers and API on a runtime, serving the production predictor."""
    slot = PredictorHolder()
    live = LiveModel(
        runtime,
        name=settings.predictor_model,
        slot=slot,
        loader=OnnxPredictor,
        warm_up=warm_up_predictor,
        cache_dir=settings.resolved_model_cache_dir(),
        poll_seconds=settings.model_poll_seconds,
        fallback=settings.resolved_predictor_path(),
    )
    shadow = _shadow(runtime, settings)
    cache = ResponseCache(ttl=settings.latest_cache_seconds)
    rescorer = Rescorer(runtime, threshold=settings.signal_threshold, on_done=cache.clear)

    def swapped(predictor: OnnxPredictor) -> None:
        # Cached answers preferred the old version; re-scoring makes the new one's available.
        cache.clear()
        rescorer.schedule(predictor)

    live.on_swap.append(swapped)
    for subscription in subscriptions(
        runtime,
        slot,
        live,
        service="prediction",
        threshold=settings.signal_threshold,
        shadow=shadow,
    ):
        runtime.bus.subscribe(subscription)

    async def model_loaded() -> bool:
        return slot.ready()

    predict_limit = max(
        settings.http_max_body_kib << 10, predict_body_bytes(settings.predict_max_rows)
    )
    return Component(
        name="prediction",
        router=router,
        state=Serving(
            slot=slot,
            cache=cache,
            threshold=settings.signal_threshold,
            max_rows=settings.predict_max_rows,
        ),
        ready_checks={"predictor": model_loaded},
        serving=[live.reported, *([shadow.reported] if shadow is not None else [])],
        describe=[describe_row_limit(settings.predict_max_rows)],
        body_limits={predict: BodyLimit(predict_limit, "MARKETSENSE_PREDICT_MAX_ROWS")},
        on_start=[live.start, *([shadow.start] if shadow is not None else [])],
        on_stop=[rescorer.stop, live.stop, *([shadow.stop] if shadow is not None else [])],
    )


def _shadow(runtime: Runtime, settings: PredictionSettings) -> LiveModel[OnnxPredictor] | None:
    """The follower of the shadow alias (its own slot, no local fallback), or None if unset."""
    if not settings.prediction_shadow_alias:
        return None
    return LiveModel(
        runtime,
        name=settings.predictor_model,
        slot=PredictorHolder(),
        loader=OnnxPredictor,
        warm_up=warm_up_predictor,
        # A folder of its own: each follower prunes the versions it does not keep.
        cache_dir=settings.resolved_model_cache_dir() / "shadow" / settings.prediction_shadow_alias,
        poll_seconds=settings.model_poll_seconds,
        alias=settings.prediction_shadow_alias,
    )


def build_app(settings: PredictionSettings | None = None) -> FastAPI:
    """The prediction service as its own process."""
    return build_service_app("prediction", settings or PredictionSettings(), create_component)
