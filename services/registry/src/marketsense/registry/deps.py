"""Dependencies of the registry's routes, each declared once."""

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
from marketsense.registry.config import RegistrySettings

__all__ = [
    "ApproverKey",
    "PublisherKey",
    "ReaderKey",
    "RuntimeDep",
    "SessionDep",
    "SettingsDep",
]


def get_settings(request: Request) -> RegistrySettings:
    """The registry's settings, as its app was built with."""
    return component_state(request, "registry", RegistrySettings)


SettingsDep = Annotated[RegistrySettings, Depends(get_settings)]
"""The registry's settings."""
