"""Retraining's event handlers: a request is recorded once and wakes the worker; a finished run
lets waiting requests look at the data again."""

from __future__ import annotations

import logging

from marketsense.common.bus import Subscription
from marketsense.common.clock import utc_now
from marketsense.common.events import Envelope, RetrainRequested, RunStateChanged
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.retraining.store import record_request, release_waiting
from marketsense.retraining.worker import RetrainWorker

log = logging.getLogger(__name__)

RUN_ENDS = frozenset(
    {
        RunState.SUCCESS.value,
        RunState.PARTIAL.value,
        RunState.FAILED.value,
        RunState.CANCELLED.value,
    }
)
"""Run states that end a run: only finished runs add stored days, but any end is a moment the
data stops changing under a waiting request."""


def subscriptions(runtime: Runtime, worker: RetrainWorker) -> list[Subscription]:
    """Retraining listens for requests and for runs that ended."""

    async def on_requested(envelope: Envelope, payload: RetrainRequested) -> None:
        retrain_id, new = await record_request(
            runtime, event_id=str(envelope.id), request=payload, now=utc_now()
        )
        if new:
            log.info(
                "retrain %s of %s recorded: %s", retrain_id, payload.model_name, payload.reason
            )
        worker.wake()

    async def on_run_state(_envelope: Envelope, payload: RunStateChanged) -> None:
        if payload.to_state in RUN_ENDS and await release_waiting(runtime, now=utc_now()):
            worker.wake()

    group = runtime.group("retraining")
    return [
        Subscription.of(RetrainRequested, on_requested, group=group),
        Subscription.of(RunStateChanged, on_run_state, group=group),
    ]
