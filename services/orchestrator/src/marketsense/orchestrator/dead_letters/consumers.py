"""Raw consumers of every watched `.dlq` topic: records there may not even parse."""

from __future__ import annotations

from marketsense.common.alerts import Notifier
from marketsense.common.bus import Record, Subscription
from marketsense.common.bus.base import DLQ_SUFFIX
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.dead_letters.flows import index_dead_letter
from marketsense.orchestrator.dead_letters.service import WATCHED_TOPICS


def subscriptions(runtime: Runtime, notifier: Notifier) -> list[Subscription]:
    """One subscription per watched topic's dead-letter topic, indexing each record."""

    async def on_record(record: Record) -> None:
        await index_dead_letter(runtime, notifier, record)

    group = runtime.group("orchestrator-dead-letters")
    return [
        Subscription(topic=topic + DLQ_SUFFIX, group=group, raw_handler=on_record)
        for topic in WATCHED_TOPICS
    ]
