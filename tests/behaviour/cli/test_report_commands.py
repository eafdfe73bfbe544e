"""`marketsense report` against a monitoring service served on loopback, the page opened in
headless Chromium and its screenshot checked for every chart's lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from marketsense.cli.report import PALETTES, THRESHOLD_COLOUR
from tests.cli_support import invoke, one_error_line
from tests.monitoring_api_support import Served, served_monitoring
from tests.png_support import read_png

FLOOR = 400
"""Fewest pixels of a chart's first colour that show its line was drawn: a legend swatch holds
about 60, a line across the chart thousands."""


def _report(served: Served, out: Path, *args: str) -> str:
    """Run `marketsense report --out OUT ARGS`; its stderr."""
    env = {"MARKETSENSE_MONITORING_URL": served.url}
    result = invoke("report", "--out", str(out), *args, key=served.key, env=env)
    assert result.exit_code == 0, result.stderr
    return result.stderr


def chromium() -> str:
    """Debian's chromium; skipped where it is absent, but CI must have it (scripts/chromium.sh)."""
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; scripts/chromium.sh installs it")
        pytest.skip("chromium is not installed; scripts/chromium.sh installs it")
    return found


def screenshot(page: Path, png: Path) -> np.ndarray:
    """The page as headless Chromium draws it, 1200 by 3000 pixels."""
    command = [chromium(), "--headless", "--disable-gpu", "--hide-scrollbars"]
    if os.geteuid() == 0:  # Chromium refuses to run as root inside its sandbox
        command.append("--no-sandbox")
    command += [f"--screenshot={png}", "--window-size=1200,3000", page.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return read_png(png)


def _pixels(image: np.ndarray, colour: str) -> int:
    """Pixels within a small distance of `colour` (anti-aliasing blurs a line's edges)."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image.astype(int) - rgb).max(axis=2) <= 24).sum())


def test_the_report_draws_every_chart(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    with served_monitoring(tmp_path) as served:
        said = _report(served, out, "--days", "60")
    assert f"report of 2 version(s) written to {out}" in said
    page = out.read_text()
    # Self-contained: plotly's script is inline, nothing is fetched.
    assert "<script src=" not in page
    assert "Plotly.newPlot" in page
    image = screenshot(out, tmp_path / "report.png")
    drawn = {chart: _pixels(image, colours[0]) for chart, colours in PALETTES.items()}
    drawn["decay threshold"] = _pixels(image, THRESHOLD_COLOUR)
    assert all(count >= FLOOR for count in drawn.values()), drawn


def test_a_model_without_history_gets_a_page_that_says_so(tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    with served_monitoring(tmp_path, days=None) as served:
        said = _report(served, out)
    page = out.read_text()
    assert "No performance is stored for model" in page
    assert "plotly-graph-div" not in page
    assert "nothing to plot" in said


def test_report_refuses_an_out_path_it_cannot_write(tmp_path: Path) -> None:
    missing = one_error_line(
        invoke("report", "--out", str(tmp_path / "no" / "report.html"), key="msk_" + "k" * 40)
    )
    assert "does not exist" in missing
    folder = one_error_line(invoke("report", "--out", str(tmp_path), key="msk_" + "k" * 40))
    assert "is a folder" in folder
