"""The retraining service's app."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.alerts import Notifier, alerter_from_settings
from marketsense.common.app import Component, build_service_app
from marketsense.common.registry_calls import InProcessTransport, RegistryCalls
from marketsense.common.runtime import Runtime
from marketsense.retraining.config import RetrainingSettings
from marketsense.retraining.consumers import subscriptions
from marketsense.retraining.views import router
from marketsense.retraining.worker import RetrainWorker


def create_component(
    runtime: Runtime,
    settings: RetrainingSettings,
    *,
    notifier: Notifier | None = None,
    registry_transport: InProcessTransport | None = None,
) -> Component:
    """The retraining worker, its consumers and its API on a runtime.

    The registry is called at `registry_url`, or in this process through `registry_transport`.
    """
    notifier = notifier or alerter_from_settings(
        settings, database=runtime.database, service=runtime.service
    )
    worker = RetrainWorker(
        runtime,
        settings,
        # Built at start-up: a deployment without the registry's URL fails to start, naming it.
        calls=lambda: RegistryCalls.from_settings(settings, in_process=registry_transport),
        notifier=notifier,
    )
    for subscription in subscriptions(runtime, worker):
        runtime.bus.subscribe(subscription)
    return Component(
        name="retraining",
        router=router,
        state=settings,
        on_start=[worker.start],
        loops=[worker.run],
        on_stop=[worker.stop],
    )


def build_app(settings: RetrainingSettings | None = None) -> FastAPI:
    """The retraining service as its own process."""
    return build_service_app("retraining", settings or RetrainingSettings(), create_component)
