"""The registry service's app: registered models, their versions, aliases and audit log."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from marketsense.common.app import Component, build_service_app
from marketsense.common.request_guard import BodyLimit
from marketsense.common.runtime import Runtime
from marketsense.registry.config import RegistrySettings
from marketsense.registry.evaluation_views import SET_LIMIT, post_evaluation_set
from marketsense.registry.evaluation_views import router as evaluation_router
from marketsense.registry.lifecycle_views import router as lifecycle_router
from marketsense.registry.serving_views import router as serving_router
from marketsense.registry.uploads import push_body_limit
from marketsense.registry.views import describe_bundle_limit, post_version
from marketsense.registry.views import router as model_router

# Each router keeps its own /v1 prefix; this one has none, so the paths are the routers' own.
ROUTER = APIRouter()
"""Every route of the registry: one line per router."""
ROUTER.include_router(model_router)
ROUTER.include_router(lifecycle_router)
ROUTER.include_router(serving_router)
ROUTER.include_router(evaluation_router)


def create_component(runtime: Runtime, settings: RegistrySettings) -> Component:
    """The registry component: its REST API on the runtime's database and object store."""
    return Component(
        name="registry",
        router=ROUTER,
        state=settings,
        describe=[describe_bundle_limit(settings.registry_max_bundle_mb)],
        # A push streams its bundle through the upload reader, which bounds each part itself.
        body_limits={
            post_version: BodyLimit(
                push_body_limit(settings.registry_max_bundle_mb << 20),
                "MARKETSENSE_REGISTRY_MAX_BUNDLE_MB",
                streamed=True,
            ),
            post_evaluation_set: SET_LIMIT,
        },
    )


def build_app(settings: RegistrySettings | None = None) -> FastAPI:
    """The registry service as its own process."""
    return build_service_app("registry", settings or RegistrySettings(), create_component)
