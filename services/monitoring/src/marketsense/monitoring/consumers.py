"""Monitoring's event handlers."""

from __future__ import annotations

from marketsense.common.bus import Subscription
from marketsense.common.events import Envelope, RunStateChanged
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.monitoring.loop import MonitoringLoop

FINISHED = frozenset({RunState.SUCCESS.value, RunState.PARTIAL.value})
"""Run states after which a run's stored bars and predictions are final: a partial run's failed
symbols stored none, and what it did store is as good as a successful run's."""


def subscriptions(runtime: Runtime, loop: MonitoringLoop) -> list[Subscription]:
    """Monitoring listens for runs that finished, daily or backfill."""

    async def on_state_changed(envelope: Envelope, payload: RunStateChanged) -> None:
        if payload.to_state in FINISHED and envelope.run_id is not None:
            await loop.run_finished(envelope.run_id)

    return [Subscription.of(RunStateChanged, on_state_changed, group=runtime.group("monitoring"))]
