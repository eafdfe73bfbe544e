"""Fixtures of the alert suites: a local SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from tests.behaviour.common.alerts.alert_support import Collector
from tests.e2e.processes import free_port


@pytest.fixture
def smtp() -> Iterator[tuple[Collector, int]]:
    """A plain SMTP server on loopback (no TLS, no login), collecting what it receives."""
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()
