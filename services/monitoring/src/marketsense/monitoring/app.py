"""The monitoring service's app: operations endpoints; its own API arrives with its issue."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.app import Component, build_service_app
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.views import router


def create_component(runtime: Runtime, settings: MonitoringSettings) -> Component:
    """The monitoring component (health, readiness and metrics only, for now)."""
    return Component(name="monitoring", router=router, state=settings)


def build_app(settings: MonitoringSettings | None = None) -> FastAPI:
    """The monitoring service as its own process."""
    return build_service_app("monitoring", settings or MonitoringSettings(), create_component)
