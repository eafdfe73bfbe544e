"""The monitoring service's app."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.alerts import Notifier, alerter_from_settings
from marketsense.common.app import Component, Loop, build_service_app
from marketsense.common.registry_calls import InProcessTransport
from marketsense.common.runtime import Runtime
from marketsense.monitoring.challenges import Challenges, LazyRegistry
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.consumers import subscriptions
from marketsense.monitoring.deps import MonitoringState
from marketsense.monitoring.gauges import GaugeRefresher
from marketsense.monitoring.loop import MonitoringLoop
from marketsense.monitoring.views import router


def create_component(
    runtime: Runtime,
    settings: MonitoringSettings,
    *,
    notifier: Notifier | None = None,
    registry_transport: InProcessTransport | None = None,
) -> Component:
    """Monitoring's consumer of finished runs and its API on a runtime.

    Alerts go to the sinks the settings name, or to `notifier` when one is given. Challenges
    call the registry at `MARKETSENSE_REGISTRY_URL`, else through `registry_transport` (the
    registry in this process).
    """
    notifier = notifier or alerter_from_settings(
        settings, database=runtime.database, service=runtime.service
    )
    registry = LazyRegistry(settings, registry_transport)
    challenges = Challenges(runtime, settings, notifier, registry)
    loop = MonitoringLoop(runtime, settings, notifier, challenges)
    for subscription in subscriptions(runtime, loop):
        runtime.bus.subscribe(subscription)
    loops: list[Loop] = [GaugeRefresher(runtime, settings).run]
    return Component(
        name="monitoring",
        router=router,
        state=MonitoringState(settings=settings, challenges=challenges),
        loops=loops,
        on_stop=[registry.close],
    )


def build_app(settings: MonitoringSettings | None = None) -> FastAPI:
    """The monitoring service as its own process."""
    return build_service_app("monitoring", settings or MonitoringSettings(), create_component)
