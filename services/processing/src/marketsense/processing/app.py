"""The processing service's app."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.logs import configure_logging
from marketsense.common.runtime import Runtime
from marketsense.processing.config import ProcessingSettings
from marketsense.processing.consumers import subscriptions
from marketsense.processing.sentiment import SentimentModel
from marketsense.processing.service import SentimentSlot

log = logging.getLogger(__name__)


def create_component(runtime: Runtime, settings: ProcessingSettings) -> Component:
    """Processing's consumers on a runtime, with the sentiment model they need."""
    slot = SentimentSlot()
    for subscription in subscriptions(runtime, slot, batch_size=settings.sentiment_batch_size):
        runtime.bus.subscribe(subscription)

    async def load_sentiment_model() -> None:
        path = settings.resolved_sentiment_model_path()
        try:
            slot.current = await asyncio.to_thread(
                SentimentModel,
                path,
                quantized=settings.sentiment_quantized and (path / "model.int8.onnx").exists(),
                threads=settings.sentiment_threads,
            )
        except (OSError, ValueError) as exc:
            log.error("no sentiment model loaded from %s: %s", path, exc)
            return
        manifest = slot.current.manifest
        log.info("loaded sentiment model %s v%s", manifest.name, manifest.version)

    async def model_loaded() -> bool:
        return slot.ready()

    return Component(
        name="processing",
        ready_checks={"sentiment_model": model_loaded},
        on_start=[load_sentiment_model],
    )


def build_app(settings: ProcessingSettings | None = None) -> FastAPI:
    """The processing service as its own process."""
    settings = settings or ProcessingSettings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json, service="processing")
    runtime = Runtime(settings, service="processing")
    return create_app(
        runtime, [create_component(runtime, settings)], title="marketsense processing"
    )
