"""Orchestrator's event handlers: settle runs as their symbols finish."""

from __future__ import annotations

from marketsense.common.bus import Subscription
from marketsense.common.events import Envelope, Payload, PredictionsReady, TaskFailed
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.service import settle_run


def subscriptions(runtime: Runtime) -> list[Subscription]:
    """The orchestrator follows predictions and failures to know when a run is done."""

    async def on_symbol_finished(envelope: Envelope, _payload: Payload) -> None:
        if envelope.run_id is not None:
            await settle_run(runtime=runtime, run_id=envelope.run_id)

    group = runtime.group("orchestrator")
    return [
        Subscription(
            topic=PredictionsReady.topic,
            group=group,
            handler=on_symbol_finished,
            accepts=(PredictionsReady,),
        ),
        Subscription(
            topic=TaskFailed.topic, group=group, handler=on_symbol_finished, accepts=(TaskFailed,)
        ),
    ]
