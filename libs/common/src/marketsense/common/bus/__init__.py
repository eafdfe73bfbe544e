"""Event bus: one interface, a Kafka and an in-process implementation."""

from marketsense.common.bus.base import (
    DLQ_SUFFIX,
    EventBus,
    Outgoing,
    Record,
    Subscription,
    outgoing_for,
)
from marketsense.common.bus.memory import InProcessBus

__all__ = [
    "DLQ_SUFFIX",
    "EventBus",
    "InProcessBus",
    "Outgoing",
    "Record",
    "Subscription",
    "outgoing_for",
]
