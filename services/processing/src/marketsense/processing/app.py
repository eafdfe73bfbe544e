"""The processing service's app."""

from __future__ import annotations

import functools
import logging

from fastapi import FastAPI

from marketsense.common.app import Component, build_service_app
from marketsense.common.runtime import Runtime
from marketsense.models.live import LiveModel
from marketsense.models.sentiment import SentimentModel, load_sentiment_model, warm_up_sentiment
from marketsense.processing.config import ProcessingSettings
from marketsense.processing.consumers import subscriptions
from marketsense.processing.service import SentimentSlot

log = logging.getLogger(__name__)


def create_component(runtime: Runtime, settings: ProcessingSettings) -> Component:
    """Processing's consumers on a runtime, with the production sentiment model they need."""
    slot = SentimentSlot()
    live = LiveModel(
        runtime,
        name=settings.sentiment_model,
        slot=slot,
        loader=functools.partial(
            load_sentiment_model,
            quantized=settings.sentiment_quantized,
            threads=settings.sentiment_threads,
        ),
        warm_up=warm_up_sentiment,
        cache_dir=settings.resolved_model_cache_dir(),
        poll_seconds=settings.model_poll_seconds,
        fallback=settings.resolved_sentiment_model_path(),
        variant=sentiment_variant,
    )
    for subscription in subscriptions(
        runtime, slot, live, service="processing", batch_size=settings.sentiment_batch_size
    ):
        runtime.bus.subscribe(subscription)

    async def model_loaded() -> bool:
        return slot.ready()

    return Component(
        name="processing",
        ready_checks={"sentiment_model": model_loaded},
        serving=[live.reported],
        on_start=[live.start],
        on_stop=[live.stop],
    )


def sentiment_variant(model: SentimentModel) -> str:
    """The graph a loaded sentiment model runs: int8 only when asked for and shipped."""
    return "int8" if model.quantized else "fp32"


def build_app(settings: ProcessingSettings | None = None) -> FastAPI:
    """The processing service as its own process."""
    return build_service_app("processing", settings or ProcessingSettings(), create_component)
