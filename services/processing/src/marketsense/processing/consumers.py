"""Processing's event handlers."""

from __future__ import annotations

from marketsense.common.bus import Subscription
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import Envelope, Payload, RawDataReady
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import fail_task
from marketsense.processing.service import process_symbol


def subscriptions(runtime: Runtime) -> list[Subscription]:
    """Processing listens for raw data, one event per (run, symbol)."""

    async def on_raw_data_ready(envelope: Envelope, payload: Payload) -> None:
        assert isinstance(payload, RawDataReady)
        if envelope.run_id is None or envelope.symbol is None:
            raise NonRetryableError("raw.ready needs run_id and symbol")
        await process_symbol(
            runtime=runtime, run_id=envelope.run_id, symbol=envelope.symbol, event=payload
        )

    async def on_dead_letter(envelope: Envelope, error: BaseException, attempts: int) -> None:
        await fail_task(runtime, envelope, stage=Stage.PROCESS, error=error, attempts=attempts)

    return [
        Subscription(
            topic=RawDataReady.topic,
            group=runtime.group("processing"),
            handler=on_raw_data_ready,
            on_dead_letter=on_dead_letter,
            accepts=(RawDataReady,),
        )
    ]
