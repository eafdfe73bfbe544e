"""What the alert suites share: a hand-moved clock, an SMTP collector, and a typical alert."""

from __future__ import annotations

import datetime as dt
import socket
from email import message_from_bytes
from email.message import Message
from typing import Any

from prometheus_client import REGISTRY

from marketsense.common.alerts import Alert

START = dt.datetime(2026, 11, 20, 21, 30, tzinfo=dt.UTC)
SLACK_PATH = "/services/T000/B000/slack-token-xyz"
HOOK_PATH = "/hooks/secret-token-abc"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now


class Collector:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep a received message and accept it."""
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def alert(key: str = "run-ended:r1", severity: str = "critical") -> Alert:
    """An alert as the orchestrator would raise it."""
    return Alert.model_validate(
        {
            "key": key,
            "severity": severity,
            "title": "Run r1 ended PARTIAL",
            "text": "AAPL failed in ingest after 3 attempts.\nRetry: marketsense run retry r1",
        }
    )


def counted(severity: str, outcome: str) -> float:
    """The alerts counter's current value."""
    value = REGISTRY.get_sample_value(
        "marketsense_alerts_total", {"severity": severity, "outcome": outcome}
    )
    return value or 0.0


def refused_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/refused-secret"
