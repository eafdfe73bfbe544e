"""Dependencies of the monitoring service's routes, each declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketsense.common.deps import ReaderKey, RuntimeDep, SessionDep, state_of
from marketsense.monitoring.config import MonitoringSettings

__all__ = ["ReaderKey", "RuntimeDep", "SessionDep", "SettingsDep"]


SettingsDep = Annotated[MonitoringSettings, Depends(state_of("monitoring", MonitoringSettings))]
"""The monitoring service's settings."""
