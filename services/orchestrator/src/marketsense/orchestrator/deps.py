"""Dependencies of the orchestrator's routes, each declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from marketsense.common.deps import (
    ApproverKey,
    PublisherKey,
    ReaderKey,
    RuntimeDep,
    SessionDep,
    state_of,
)
from marketsense.orchestrator.config import OrchestratorSettings

__all__ = [
    "ApproverKey",
    "PublisherKey",
    "ReaderKey",
    "RuntimeDep",
    "SessionDep",
    "SettingsDep",
]


SettingsDep = Annotated[
    OrchestratorSettings, Depends(state_of("orchestrator", OrchestratorSettings))
]
"""The orchestrator's settings."""
