"""In-process event bus: the embedded default, with the same delivery rules as Kafka."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence

from marketsense.common.bus.base import EventBus, Outgoing, Record, Subscription
from marketsense.common.cancelling import wait_ended
from marketsense.common.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)


class InProcessBus(EventBus):
    """Topics are append-only lists; each consumer group walks them from its own offset."""

    def __init__(self, *, topic_prefix: str = "", max_attempts: int = 3, retry_base: float = 0.2):
        super().__init__(
            topic_prefix=topic_prefix, max_attempts=max_attempts, retry_base=retry_base
        )
        self.logs: dict[str, list[Record]] = defaultdict(list)
        self._offsets: dict[tuple[str, str], int] = defaultdict(int)
        self._wakeups: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def _send(self, messages: Sequence[Outgoing]) -> None:
        for message in messages:
            log_ = self.logs[message.topic]
            log_.append(
                Record(message.topic, 0, len(log_), message.key, message.value, message.headers)
            )
        for wakeup in self._wakeups.values():
            wakeup.set()

    async def start(self) -> None:
        """Start one consuming task per consumer group."""
        self._stopping = False
        self._halted.clear()
        groups: dict[str, list[Subscription]] = defaultdict(list)
        for sub in self.subscriptions:
            groups[sub.group].append(sub)
        for group, subs in groups.items():
            self._wakeups[group] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._consume(group, subs), name=group))

    async def _consume(self, group: str, subs: list[Subscription]) -> None:
        wakeup = self._wakeups[group]
        while not self._stopping:
            wakeup.clear()
            moved = False
            for sub in subs:
                topic = self.topic_name(sub.topic)
                position = (group, topic)
                lag = CONSUMER_LAG.labels(group=group, topic=topic)
                while self._offsets[position] < len(self.logs[topic]) and not self._stopping:
                    record = self.logs[topic][self._offsets[position]]
                    lag.set(len(self.logs[topic]) - self._offsets[position])
                    try:
                        await self.deliver(sub, record)
                    except Exception:
                        # Like an uncommitted Kafka offset: the record is offered again.
                        log.exception("handler failed outside its retry policy; retrying")
                        await asyncio.sleep(self.retry_base)
                        continue
                    self._offsets[position] += 1
                    moved = True
                lag.set(len(self.logs[topic]) - self._offsets[position])
            if not moved:
                await wakeup.wait()

    async def stop(self) -> None:
        """Let each group finish its in-flight record (unless it waits out an outage), then stop."""
        self._stopping = True
        self._halted.set()
        for wakeup in self._wakeups.values():
            wakeup.set()
        for task in self._tasks:
            await wait_ended(task)
        self._tasks.clear()
        self._wakeups.clear()

    async def healthy(self) -> bool:
        """Always reachable: it lives in this process."""
        return True
