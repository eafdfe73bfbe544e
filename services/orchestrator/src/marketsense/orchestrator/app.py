"""The orchestrator service's app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.logs import configure_logging
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.consumers import subscriptions
from marketsense.orchestrator.dead_letter_views import dead_letter_router
from marketsense.orchestrator.dead_letters import dead_letter_subscriptions
from marketsense.orchestrator.reaper import Reaper
from marketsense.orchestrator.scheduler import Scheduler
from marketsense.orchestrator.views import router


def create_component(runtime: Runtime, settings: OrchestratorSettings) -> Component:
    """The orchestrator's consumers, API, reaper and (when configured) schedule on a runtime."""
    for subscription in subscriptions(runtime) + dead_letter_subscriptions(runtime):
        runtime.bus.subscribe(subscription)
    api = APIRouter()
    api.include_router(router(runtime, settings))
    api.include_router(dead_letter_router(runtime))
    component = Component(name="orchestrator", router=api)
    loops: list[Callable[[], Awaitable[None]]] = [Reaper(runtime, settings).run_forever]
    if settings.schedule_cron:
        loops.append(Scheduler(runtime, settings).run_forever)
    background = BackgroundLoops(loops)
    component.on_start.append(background.start)
    component.on_stop.append(background.stop)
    return component


class BackgroundLoops:
    """Loops that run while the app serves, started and cancelled with it."""

    def __init__(self, loops: list[Callable[[], Awaitable[None]]]):
        self.loops = loops
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Start every loop as a task."""
        self.tasks = [asyncio.create_task(_as_coroutine(loop)) for loop in self.loops]

    async def stop(self) -> None:
        """Cancel every loop and wait for it to end."""
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []


async def _as_coroutine(loop: Callable[[], Awaitable[None]]) -> None:
    await loop()


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
