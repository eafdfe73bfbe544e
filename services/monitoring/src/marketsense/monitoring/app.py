"""The monitoring service's app: operations endpoints; its own API arrives with its issue."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.logs import configure_logging
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings


def create_component(runtime: Runtime, settings: MonitoringSettings) -> Component:
    """The monitoring component (health, readiness and metrics only, for now)."""
    return Component(name="monitoring")


def build_app(settings: MonitoringSettings | None = None) -> FastAPI:
    """The monitoring service as its own process."""
    settings = settings or MonitoringSettings()
    configure_logging(level=settings.log_level, json_lines=settings.log_json, service="monitoring")
    runtime = Runtime(settings, service="monitoring")
    return create_app(
        runtime, [create_component(runtime, settings)], title="marketsense monitoring"
    )
