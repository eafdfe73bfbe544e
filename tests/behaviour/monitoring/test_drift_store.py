"""The drift measurement's placeholder (replaced with drift's own change): no version has a
reference yet, so a run measures nothing."""

from __future__ import annotations

from pathlib import Path

from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.drift_store import measure_run_drift


async def test_without_a_reference_a_run_has_no_drift_figures(tmp_path: Path) -> None:
    settings = MonitoringSettings(home=tmp_path)
    runtime = Runtime(settings, service="monitoring")

    assert await measure_run_drift(runtime, settings, run_id="r1") == []
