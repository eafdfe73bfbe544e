"""Dependencies of the registry's routes, each declared once."""

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
from marketsense.registry.config import RegistrySettings

__all__ = [
    "ApproverKey",
    "PublisherKey",
    "ReaderKey",
    "RuntimeDep",
    "SessionDep",
    "SettingsDep",
]


SettingsDep = Annotated[RegistrySettings, Depends(state_of("registry", RegistrySettings))]
"""The registry's settings."""
