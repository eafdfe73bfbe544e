"""The ingestion service's app."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.app import Component, build_service_app
from marketsense.common.runtime import Runtime
from marketsense.ingestion.config import IngestionSettings
from marketsense.ingestion.consumers import subscriptions
from marketsense.ingestion.sources import build_source
from marketsense.ingestion.sources.factory import bar_checks


def create_component(runtime: Runtime, settings: IngestionSettings) -> Component:
    """Ingestion's consumers on a runtime."""
    source = build_source(settings)
    for subscription in subscriptions(runtime, source, bar_checks(settings)):
        runtime.bus.subscribe(subscription)
    return Component(name="ingestion")


def build_app(settings: IngestionSettings | None = None) -> FastAPI:
    """The ingestion service as its own process."""
    return build_service_app("ingestion", settings or IngestionSettings(), create_component)
