"""The monitoring client against the served app: typed answers, refusals and an absent server
as ApiError with the server's own explanation."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from marketsense.common.api_client import ApiError
from marketsense.monitoring.client import MonitoringClient
from tests.monitoring_api_support import served_monitoring


def test_the_client_reads_every_route_and_carries_refusals(tmp_path: Path) -> None:
    with (
        served_monitoring(tmp_path, days=30) as served,
        MonitoringClient(served.url, served.key) as client,
    ):
        assert served.history is not None
        model = served.history.model
        performance = client.performance(window=21)
        assert [v.version for v in performance.versions] == ["1", "2"]
        page = client.performance_daily(version="2", limit=10)
        assert (page.version, len(page.items)) == ("2", 10)
        rest = client.performance_daily(version="2", limit=10, cursor=page.next_cursor)
        assert rest.items[0].day < page.items[-1].day
        assert len(client.drift(model=model).items) == 16
        assert len(client.decay_alerts(model=model).items) == 2
        with pytest.raises(ApiError, match="404: version '7'") as refused:
            client.performance(version="7")
        assert refused.value.status == 404


def test_an_absent_server_is_an_error_without_a_status() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        MonitoringClient(f"http://127.0.0.1:{port}", "msk_" + "k" * 40) as client,
        pytest.raises(ApiError, match="cannot reach the monitoring service") as failed,
    ):
        client.performance()
    assert failed.value.status is None
