"""Dependencies of the orchestrator's routes, each declared once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from marketsense.common.deps import (
    ApproverKey,
    PublisherKey,
    ReaderKey,
    RuntimeDep,
    SessionDep,
    component_state,
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


def get_settings(request: Request) -> OrchestratorSettings:
    """The orchestrator's settings, as its app was built with."""
    return component_state(request, "orchestrator", OrchestratorSettings)


SettingsDep = Annotated[OrchestratorSettings, Depends(get_settings)]
"""The orchestrator's settings."""
