"""The prediction service's app."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.logs import configure_logging
from marketsense.common.runtime import Runtime
from marketsense.prediction.config import PredictionSettings
from marketsense.prediction.consumers import subscriptions
from marketsense.prediction.model import OnnxPredictor
from marketsense.prediction.service import PredictorHolder
from marketsense.prediction.views import router

log = logging.getLogger(__name__)


def create_component(runtime: Runtime, settings: PredictionSettings) -> Component:
    """Prediction's consumers and API on a runtime."""
    holder = PredictorHolder()
    for subscription in subscriptions(runtime, holder, threshold=settings.signal_threshold):
        runtime.bus.subscribe(subscription)

    async def load_predictor() -> None:
        path = settings.resolved_predictor_path()
        try:
            holder.current = await asyncio.to_thread(OnnxPredictor, path)
        except (OSError, ValueError) as exc:
            log.error("no predictor loaded from %s: %s", path, exc)
            return
        log.info(
            "loaded predictor %s v%s", holder.current.manifest.name, holder.current.manifest.version
        )

    async def model_loaded() -> bool:
        return holder.ready()

    return Component(
        name="prediction",
        router=router(runtime),
        ready_checks={"predictor": model_loaded},
        on_start=[load_predictor],
    )


def build_app(settings: PredictionSettings | None = None) -> FastAPI:
    """The prediction service as its own process."""
    settings = settings or PredictionSettings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json, service="prediction")
    runtime = Runtime(settings, service="prediction")
    return create_app(
        runtime, [create_component(runtime, settings)], title="marketsense prediction"
    )
