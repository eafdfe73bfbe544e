"""What an alert says, and what a sink is given to deliver it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, Field

Severity = Literal["warning", "critical"]


class Alert(BaseModel):
    """Something an on-call person should act on, in text that needs no links."""

    key: str = Field(min_length=1, max_length=255)
    """Deduplication key: alerts with the same key within the window are sent once."""
    severity: Severity
    """`critical` wants action now; `warning` wants it today."""
    title: str
    """One line saying what happened."""
    text: str
    """What failed, where, and the command that fixes or retries it."""


@dataclass(frozen=True)
class Delivery:
    """An alert as a sink sends it: with when it first fired, how often, and from where."""

    alert: Alert
    first_at: dt.datetime
    count: int
    service: str

    def as_json(self) -> dict[str, object]:
        """The alert as the generic webhook's JSON body."""
        return {
            "key": self.alert.key,
            "severity": self.alert.severity,
            "title": self.alert.title,
            "text": self.alert.text,
            "first_at": self.first_at.isoformat(),
            "count": self.count,
            "service": self.service,
        }


class Notifier(Protocol):
    """Anything that takes alerts: the alerter, or a recorder in tests."""

    async def notify(self, alert: Alert) -> bool:
        """Send (True) or count (False) an alert; never raises."""
        ...
