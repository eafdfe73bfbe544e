"""`marketsense perf show` against a monitoring service served on loopback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from typer.testing import Result

from marketsense.monitoring.windows import window_figures
from tests.cli_support import invoke, one_error_line
from tests.monitoring_api_support import Served, served_monitoring


def _cli(served: Served, *args: str, key: str | None = None) -> Result:
    """`marketsense ARGS` against the served monitoring API, wide enough for whole cells."""
    env = {"MARKETSENSE_MONITORING_URL": served.url, "COLUMNS": "250"}
    return invoke(*args, key=served.key if key is None else key, env=env)


def test_perf_show_prints_production_and_challenger_side_by_side(tmp_path: Path) -> None:
    with served_monitoring(tmp_path) as served:
        shown = _cli(served, "perf", "show", "--window", "21")
        as_json = _cli(served, "perf", "show", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert served.history is not None
    rows = shown.stdout.splitlines()
    assert "v1 (production)" in shown.stdout
    assert "v2" in shown.stdout
    for version in ("1", "2"):
        figures = window_figures(served.history.daily[version], 21)
        assert figures is not None
        assert figures.accuracy is not None
        assert figures.strategy.sharpe is not None
        accuracy = next(line for line in rows if line.strip("│ ").startswith("accuracy"))
        assert f"{figures.accuracy:.1%}" in accuracy
        sharpe = next(line for line in rows if line.strip("│ ").startswith("Sharpe "))
        assert f"{figures.strategy.sharpe:.2f}" in sharpe
    body = json.loads(as_json.stdout)
    assert [(v["version"], len(v["windows"])) for v in body["versions"]] == [("1", 3), ("2", 3)]


def test_perf_show_refusals_are_one_line_each(tmp_path: Path) -> None:
    with served_monitoring(tmp_path, days=30) as served:
        unknown = one_error_line(_cli(served, "perf", "show", "--model", "no-such-model"))
        window = one_error_line(_cli(served, "perf", "show", "--window", "30"))
        keyless = one_error_line(_cli(served, "perf", "show", key=""))
    assert "404" in unknown
    assert "model 'no-such-model' has no stored performance" in unknown
    assert "422" in window
    assert "performance_windows lists 21, 63, 252" in window
    assert "401" in keyless


def test_perf_show_without_a_service_says_where_it_looked() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    result = invoke("perf", "show", key="msk_" + "k" * 40, env={"MARKETSENSE_MONITORING_URL": url})
    line = one_error_line(result)
    assert f"cannot reach the monitoring service at {url}" in line
    assert line.endswith("is the monitoring service running?")
