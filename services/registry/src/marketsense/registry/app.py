"""The registry service's app: registered models, their versions, aliases and audit log."""

from __future__ import annotations

from fastapi import FastAPI

from marketsense.common.app import Component, build_service_app
from marketsense.common.runtime import Runtime
from marketsense.registry.config import RegistrySettings
from marketsense.registry.views import describe_bundle_limit, router


def create_component(runtime: Runtime, settings: RegistrySettings) -> Component:
    """The registry component: its REST API on the runtime's database and object store."""
    return Component(
        name="registry",
        router=router,
        state=settings,
        describe=[describe_bundle_limit(settings.registry_max_bundle_mb)],
    )


def build_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry service as its own process."""
    return build_service_app("registry", settings or RegistrySettings(), create_component)
