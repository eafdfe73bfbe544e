"""Evaluation set routes: add, list, read and download the sets the registry scores versions on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from marketsense.common.api_models import (
    AUTH_ERRORS,
    ID_CURSOR_PATTERN,
    MAX_INT32,
    UNREADABLE_BODY,
    error_response,
    row_id,
)
from marketsense.common.db.models import EvaluationSet
from marketsense.common.request_guard import BodyLimit
from marketsense.models.evaluation import MAX_SET_BYTES, InvalidEvaluationSet
from marketsense.models.kinds import ModelKind
from marketsense.registry.deps import ApproverKey, ReaderKey, RuntimeDep, SessionDep
from marketsense.registry.evaluation_sets import (
    active_ids,
    set_by_id,
    set_bytes,
    set_page,
    store_set,
)
from marketsense.registry.predictor_sets import predictor_set_from_runs
from marketsense.registry.schemas_evaluation import (
    SET_NAME_PATTERN,
    EvaluationSetPageRead,
    EvaluationSetRead,
    PredictorSetFromRuns,
)

MEDIA_TYPES: dict[str, str] = {
    "sentiment": "text/csv",
    "predictor": "application/vnd.apache.parquet",
}
"""The Content-Type a set of each kind is uploaded and downloaded as."""
SET_LIMIT = BodyLimit(MAX_SET_BYTES, f"the evaluation set limit, {MAX_SET_BYTES >> 20} MiB")
"""An upload's bound, checked as the body streams in: a fixed bound, not a setting."""

SetId = Annotated[int, Path(ge=1, le=MAX_INT32, description="Evaluation set id.")]

_NOT_FOUND = error_response(404, "No such evaluation set.")
_INVALID = error_response(422, "The set cannot be used; `detail` says why.")


router = APIRouter(prefix="/v1", tags=["evaluation sets"], responses=AUTH_ERRORS)

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            MEDIA_TYPES["sentiment"]: {
                "schema": {"type": "string", "format": "binary"},
                "example": "text,label\nProfits beat every estimate,positive\n",
            },
            MEDIA_TYPES["predictor"]: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/evaluation-sets",
    response_model=EvaluationSetRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add an evaluation set; it becomes the one versions of its kind are measured on "
    "(approver).",
    description=(
        "The body is the set's bytes: for `sentiment` a UTF-8 CSV with the header `text,label` "
        "(labels negative, neutral, positive) sent as `text/csv`; for `predictor` a Parquet "
        "table with `symbol`, `date`, `label` (0 down, 1 up) and every feature column, sent as "
        f"`application/vnd.apache.parquet`. At most {MAX_SET_BYTES >> 20} MiB (else 413). "
        "The same bytes again answer 200 with the stored set."
    ),
    responses={
        200: {"model": EvaluationSetRead, "description": "These bytes were stored before."},
        **error_response(413, "The body is over the evaluation set limit."),
        **error_response(415, "The Content-Type does not match `kind`."),
        **_INVALID,
    },
    openapi_extra=_UPLOAD_BODY,
)
async def post_evaluation_set(
    request: Request,
    response: Response,
    principal: ApproverKey,
    runtime: RuntimeDep,
    kind: Annotated[ModelKind, Query(description="Which models the set evaluates.")],
    name: Annotated[str, Query(pattern=SET_NAME_PATTERN, description="The set's name.")],
) -> EvaluationSetRead:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != MEDIA_TYPES[kind]:
        raise HTTPException(
            415, f"Content-Type: a {kind} set is sent as {MEDIA_TYPES[kind]} (got {media_type!r})"
        )
    data = await request.body()
    try:
        row, new = await store_set(
            runtime, kind=kind, name=name, data=data, source="uploaded", actor=principal.name
        )
    except InvalidEvaluationSet as error:
        raise HTTPException(422, f"body: {error}") from error
    if not new:
        response.status_code = status.HTTP_200_OK
    return await _read(runtime, row)


@router.post(
    "/evaluation-sets/predictor/from-runs",
    response_model=EvaluationSetRead,
    status_code=status.HTTP_201_CREATED,
    summary="Build a predictor evaluation set from stored runs (approver).",
    description=(
        "The registry reads the features that finished runs stored for the days `start..end` "
        "and labels each row with the realised next-session outcome (the next stored close "
        "above this one), then adds the rows as a predictor set. A window with no stored "
        "features, or none whose next session is stored yet, is a 422 saying which. The same "
        "rows again answer 200 with the stored set."
    ),
    responses={
        200: {"model": EvaluationSetRead, "description": "These rows were stored before."},
        **UNREADABLE_BODY,
        **_INVALID,
    },
)
async def post_predictor_set_from_runs(
    body: PredictorSetFromRuns, response: Response, principal: ApproverKey, runtime: RuntimeDep
) -> EvaluationSetRead:
    try:
        data = await predictor_set_from_runs(runtime, start=body.start, end=body.end)
        row, new = await store_set(
            runtime,
            kind="predictor",
            name=body.name or f"runs-{body.start}-{body.end}",
            data=data,
            source=f"features of finished runs with as_of in {body.start}..{body.end}",
            actor=principal.name,
        )
    except InvalidEvaluationSet as error:
        raise HTTPException(422, f"start, end: {error}") from error
    if not new:
        response.status_code = status.HTTP_200_OK
    return await _read(runtime, row)


@router.get(
    "/evaluation-sets",
    response_model=EvaluationSetPageRead,
    summary="Evaluation sets, newest first, a page at a time.",
    responses=_INVALID,
)
async def get_evaluation_sets(
    _key: ReaderKey,
    session: SessionDep,
    kind: Annotated[ModelKind | None, Query(description="Only sets of this kind.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Sets per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=ID_CURSOR_PATTERN,
            max_length=19,
            description="`next_cursor` of the previous page, unchanged.",
        ),
    ] = None,
) -> EvaluationSetPageRead:
    try:
        position = None if cursor is None else row_id(cursor)
    except ValueError as error:
        raise HTTPException(422, f"cursor: {error}") from error
    rows, after = await set_page(session, kind=kind, limit=limit, cursor=position)
    active = await active_ids(session)
    return EvaluationSetPageRead(
        items=[_as_read(row, active) for row in rows],
        next_cursor=None if after is None else str(after),
    )


@router.get(
    "/evaluation-sets/{set_id}",
    response_model=EvaluationSetRead,
    summary="One evaluation set.",
    responses=_NOT_FOUND,
)
async def get_evaluation_set(
    set_id: SetId, _key: ReaderKey, session: SessionDep
) -> EvaluationSetRead:
    row = await _found(session, set_id)
    return _as_read(row, await active_ids(session))


@router.get(
    "/evaluation-sets/{set_id}/data",
    summary="An evaluation set's bytes, as they were added.",
    response_class=Response,
    responses={
        200: {
            "description": "The set's bytes.",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in MEDIA_TYPES.values()
            },
            "headers": {
                "X-Checksum-Sha256": {
                    "description": "Recorded hex sha256 of the bytes.",
                    "schema": {"type": "string"},
                }
            },
        },
        **_NOT_FOUND,
    },
)
async def get_evaluation_set_data(
    set_id: SetId, _key: ReaderKey, session: SessionDep, runtime: RuntimeDep
) -> Response:
    row = await _found(session, set_id)
    data = await set_bytes(runtime.store, row)
    return Response(
        data, media_type=MEDIA_TYPES[row.kind], headers={"X-Checksum-Sha256": row.sha256}
    )


async def _found(session: SessionDep, set_id: int) -> EvaluationSet:
    row = await set_by_id(session, set_id)
    if row is None:
        raise HTTPException(404, f"no evaluation set {set_id}; GET /v1/evaluation-sets lists them")
    return row


async def _read(runtime: RuntimeDep, row: EvaluationSet) -> EvaluationSetRead:
    async with runtime.database.session() as session:
        return _as_read(row, await active_ids(session))


def _as_read(row: EvaluationSet, active: set[int]) -> EvaluationSetRead:
    return EvaluationSetRead.model_validate(row).model_copy(update={"active": row.id in active})
