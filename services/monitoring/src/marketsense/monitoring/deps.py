"""Dependencies of the monitoring service's routes, each declared once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from marketsense.common.deps import (
    ApproverKey,
    ReaderKey,
    RuntimeDep,
    SessionDep,
    component_state,
)
from marketsense.monitoring.challenges import Challenges
from marketsense.monitoring.config import MonitoringSettings

__all__ = [
    "ApproverKey",
    "ChallengesDep",
    "MonitoringState",
    "ReaderKey",
    "RuntimeDep",
    "SessionDep",
    "SettingsDep",
]


@dataclass(frozen=True)
class MonitoringState:
    """What the monitoring routes work with."""

    settings: MonitoringSettings
    challenges: Challenges
    """Decides challenges, for an approver's yes or no."""


def get_state(request: Request) -> MonitoringState:
    """The monitoring component's state."""
    return component_state(request, "monitoring", MonitoringState)


def get_settings(request: Request) -> MonitoringSettings:
    """The monitoring service's settings."""
    return get_state(request).settings


def get_challenges(request: Request) -> Challenges:
    """The monitoring service's challenges."""
    return get_state(request).challenges


SettingsDep = Annotated[MonitoringSettings, Depends(get_settings)]
"""The monitoring service's settings."""
ChallengesDep = Annotated[Challenges, Depends(get_challenges)]
"""The monitoring service's challenges."""
