"""The orchestrator follows each symbol's last event to settle its run when every symbol is done."""

from __future__ import annotations

from marketsense.common.alerts import Notifier
from marketsense.common.bus import Subscription
from marketsense.common.events import Envelope, PredictionsReady, TaskFailed
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.runs.flows import settle_run


def subscriptions(runtime: Runtime, notifier: Notifier) -> list[Subscription]:
    """A symbol is finished when it predicted or one of its tasks failed for good."""

    async def on_symbol_finished(envelope: Envelope, _payload: object) -> None:
        if envelope.run_id is not None:
            await settle_run(runtime=runtime, notifier=notifier, run_id=envelope.run_id)

    group = runtime.group("orchestrator")
    return [
        Subscription.of(PredictionsReady, on_symbol_finished, group=group),
        Subscription.of(TaskFailed, on_symbol_finished, group=group),
    ]
