"""The orchestrator service's app."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from marketsense.common.alerts import Notifier, alerter_from_settings
from marketsense.common.app import Component, Loop, build_service_app
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.backfills.views import describe_backfill_symbol_limit
from marketsense.orchestrator.backfills.views import router as backfill_router
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.dead_letters import consumers as dead_letter_consumers
from marketsense.orchestrator.dead_letters.views import router as dead_letter_router
from marketsense.orchestrator.retention_gauges import RetentionGauges
from marketsense.orchestrator.runs import consumers as run_consumers
from marketsense.orchestrator.runs.scheduler import Scheduler
from marketsense.orchestrator.runs.views import describe_symbol_limit
from marketsense.orchestrator.runs.views import router as run_router
from marketsense.orchestrator.tasks.reaper import Reaper


def create_component(
    runtime: Runtime, settings: OrchestratorSettings, *, notifier: Notifier | None = None
) -> Component:
    """The orchestrator's consumers, API, reaper and (when configured) schedule on a runtime.

    Alerts go to the sinks the settings name, or to `notifier` when one is given.
    """
    notifier = notifier or alerter_from_settings(
        settings, database=runtime.database, service=runtime.service
    )
    for subscription in [
        *run_consumers.subscriptions(runtime, notifier),
        *dead_letter_consumers.subscriptions(runtime, notifier),
    ]:
        runtime.bus.subscribe(subscription)
    api = APIRouter()
    api.include_router(run_router)
    api.include_router(backfill_router)
    api.include_router(dead_letter_router)
    gauges = RetentionGauges(runtime.database, interval_seconds=settings.reaper_interval_seconds)
    loops: list[Loop] = [Reaper(runtime, settings, notifier).run_forever, gauges.run_forever]
    if settings.schedule_cron:
        loops.append(Scheduler(runtime, settings).run_forever)
    return Component(
        name="orchestrator",
        router=api,
        state=settings,
        loops=loops,
        describe=[
            describe_symbol_limit(settings.max_symbols),
            describe_backfill_symbol_limit(settings.max_symbols),
        ],
    )


def build_app(settings: OrchestratorSettings | None = None) -> FastAPI:
    """The orchestrator as its own process."""
    return build_service_app("orchestrator", settings or OrchestratorSettings(), create_component)
