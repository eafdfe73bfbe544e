"""The monitoring service's app."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.alerts import Notifier, alerter_from_settings
from marketsense.common.app import Component, Loop, build_service_app
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.consumers import subscriptions
from marketsense.monitoring.loop import MonitoringLoop
from marketsense.monitoring.views import router


def create_component(
    runtime: Runtime, settings: MonitoringSettings, *, notifier: Notifier | None = None
) -> Component:
    """Monitoring's consumer of finished runs and its API on a runtime.

    Alerts go to the sinks the settings name, or to `notifier` when one is given.
    """
    notifier = notifier or alerter_from_settings(
        settings, database=runtime.database, service=runtime.service
    )
    loop = MonitoringLoop(runtime, settings, notifier)
    for subscription in subscriptions(runtime, loop):
        runtime.bus.subscribe(subscription)
    loops: list[Loop] = []
    return Component(name="monitoring", router=router, state=settings, loops=loops)


def build_app(settings: MonitoringSettings | None = None) -> FastAPI:
    """The monitoring service as its own process."""
    return build_service_app("monitoring", settings or MonitoringSettings(), create_component)
