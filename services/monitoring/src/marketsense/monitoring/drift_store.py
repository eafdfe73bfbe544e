"""Placeholder of the drift measurement (its own change replaces it): the signature the
monitoring loop calls."""

from __future__ import annotations

from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.performance_types import DriftFigure


async def measure_run_drift(
    runtime: Runtime, settings: MonitoringSettings, *, run_id: str
) -> list[DriftFigure]:
    """The run's drift figures; [] (no reference stored with any version yet)."""
    return []
