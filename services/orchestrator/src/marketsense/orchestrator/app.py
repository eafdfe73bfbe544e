"""The orchestrator service's app."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.logs import configure_logging
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.consumers import subscriptions
from marketsense.orchestrator.views import router


def create_component(runtime: Runtime, settings: OrchestratorSettings) -> Component:
    """The orchestrator's consumers and API on a runtime."""
    for subscription in subscriptions(runtime):
        runtime.bus.subscribe(subscription)
    return Component(name="orchestrator", router=router(runtime, settings))


def build_app(settings: OrchestratorSettings | None = None) -> FastAPI:
    """The orchestrator as its own process."""
    settings = settings or OrchestratorSettings()
    configure_logging(
        level=settings.log_level, json_lines=settings.log_json, service="orchestrator"
    )
    runtime = Runtime(settings, service="orchestrator")
    return create_app(
        runtime, [create_component(runtime, settings)], title="marketsense orchestrator"
    )
