"""The processing service's app."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from fastapi import FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.live_model import LiveModel
from marketsense.common.logs import configure_logging
from marketsense.common.runtime import Runtime
from marketsense.processing.config import ProcessingSettings
from marketsense.processing.consumers import subscriptions
from marketsense.processing.sentiment import QUANTIZED_MODEL_FILE, SentimentModel
from marketsense.processing.service import SentimentSlot, warm_up

log = logging.getLogger(__name__)


def load_sentiment_model(directory: Path, *, quantized: bool, threads: int) -> SentimentModel:
    """A sentiment artifact, int8 when asked for and the artifact has it."""
    return SentimentModel(
        directory,
        quantized=quantized and (directory / QUANTIZED_MODEL_FILE).exists(),
        threads=threads,
    )


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
        warm_up=warm_up,
        cache_dir=settings.resolved_model_cache_dir(),
        poll_seconds=settings.model_poll_seconds,
        fallback=settings.resolved_sentiment_model_path(),
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
        on_start=[live.start],
        on_stop=[live.stop],
    )


def build_app(settings: ProcessingSettings | None = None) -> FastAPI:
    """The processing service as its own process."""
    settings = settings or ProcessingSettings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json, service="processing")
    runtime = Runtime(settings, service="processing")
    return create_app(
        runtime, [create_component(runtime, settings)], title="marketsense processing"
    )
