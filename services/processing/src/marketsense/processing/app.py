"""The processing service's app."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.logs import configure_logging
from marketsense.common.runtime import Runtime
from marketsense.processing.config import ProcessingSettings
from marketsense.processing.consumers import subscriptions


def create_component(runtime: Runtime, settings: ProcessingSettings) -> Component:
    """Processing's consumers on a runtime."""
    for subscription in subscriptions(runtime):
        runtime.bus.subscribe(subscription)
    return Component(name="processing")


def build_app(settings: ProcessingSettings | None = None) -> FastAPI:
    """The processing service as its own process."""
    settings = settings or ProcessingSettings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json, service="processing")
    runtime = Runtime(settings, service="processing")
    return create_app(
        runtime, [create_component(runtime, settings)], title="marketsense processing"
    )
