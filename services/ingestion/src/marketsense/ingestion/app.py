"""The ingestion service's app."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.logs import configure_logging
from marketsense.common.runtime import Runtime
from marketsense.ingestion.config import IngestionSettings
from marketsense.ingestion.consumers import subscriptions
from marketsense.ingestion.sources import build_source


def create_component(runtime: Runtime, settings: IngestionSettings) -> Component:
    """Ingestion's consumers on a runtime."""
    source = build_source(settings)
    for subscription in subscriptions(runtime, source):
        runtime.bus.subscribe(subscription)
    return Component(name="ingestion")


def build_app(settings: IngestionSettings | None = None) -> FastAPI:
    """The ingestion service as its own process."""
    settings = settings or IngestionSettings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json, service="ingestion")
    runtime = Runtime(settings, service="ingestion")
    return create_app(runtime, [create_component(runtime, settings)], title="marketsense ingestion")
