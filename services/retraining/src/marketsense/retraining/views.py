"""Retraining routes: the requests, newest first, and one request's progress. Reading them
needs a reader key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from marketsense.common.api_models import AUTH_ERRORS, error_response, validation_error
from marketsense.retraining.deps import ReaderKey, SessionDep
from marketsense.retraining.schemas import RetrainPage, RetrainRead
from marketsense.retraining.store import get_retrain, list_retrains

router = APIRouter(prefix="/v1", tags=["retraining"], responses=AUTH_ERRORS)

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


@router.get(
    "/retrains",
    response_model=RetrainPage,
    summary="Retrain requests, newest first, a page at a time.",
    responses=error_response(422, "A bad cursor or limit."),
)
async def get_retrains(
    _key: ReaderKey,
    session: SessionDep,
    model: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Only this model's.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Entries per page, 1 to 500.")] = 100,
    cursor: Annotated[
        str | None,
        Query(pattern=_UUID, description="`next_cursor` of the previous page, unchanged."),
    ] = None,
) -> RetrainPage:
    try:
        rows = await list_retrains(session, model=model, limit=limit, after=cursor)
    except ValueError as exc:
        raise validation_error(("query", "cursor"), str(exc)) from exc
    page = rows[:limit]
    return RetrainPage(
        items=[RetrainRead.model_validate(row) for row in page],
        next_cursor=page[-1].id if len(rows) > limit else None,
    )


@router.get(
    "/retrains/{retrain_id}",
    response_model=RetrainRead,
    summary="One retrain request: its state, training set, runs and challenger version.",
    responses=error_response(404, "No retrain request has this id."),
)
async def get_one_retrain(
    _key: ReaderKey,
    session: SessionDep,
    retrain_id: Annotated[str, Path(pattern=_UUID, description="The request's id.")],
) -> RetrainRead:
    row = await get_retrain(session, retrain_id)
    if row is None:
        raise HTTPException(
            404, f"no retrain request {retrain_id}; GET /v1/retrains lists them, newest first"
        )
    return RetrainRead.model_validate(row)
