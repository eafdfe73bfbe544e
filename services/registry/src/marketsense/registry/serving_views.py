"""Registry route telling which version of a model each replica of a service serves."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter

from marketsense.common.api_models import AUTH_ERRORS, error_response
from marketsense.registry.deps import ReaderKey, SessionDep, SettingsDep
from marketsense.registry.schemas_serving import ServingRead
from marketsense.registry.serving import serving_view
from marketsense.registry.views import ModelName, as_http

router = APIRouter(prefix="/v1", responses=AUTH_ERRORS)
"""Included in the registry's `/v1` router (`registry.app`), which gives its paths their prefix."""


@router.get(
    "/models/{name}/serving",
    tags=["models"],
    response_model=ServingRead,
    summary="Which version and variant each running replica serves, against production.",
    description=(
        "Built from the reports processing and prediction replicas write when they load a model "
        "and on every poll of the production alias; reports older than "
        "`MARKETSENSE_REGISTRY_SERVING_STALE_SECONDS` are left out."
    ),
    responses=error_response(404, "No such model."),
)
async def get_serving(
    name: ModelName, _key: ReaderKey, session: SessionDep, settings: SettingsDep
) -> ServingRead:
    with as_http():
        return await serving_view(
            session, name=name, settings=settings, now=dt.datetime.now(dt.UTC)
        )
