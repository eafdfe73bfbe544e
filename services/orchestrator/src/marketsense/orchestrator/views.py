"""Orchestrator REST routes: readers watch runs, publishers start, retry and cancel them."""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated` dependency aliases
# that `router()` defines locally, which string annotations would leave unresolvable.

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from marketsense.common.api_models import ErrorRead
from marketsense.common.auth import KEY_HEADER, Principal, Role, require
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.operations import ActionRefused, NoSuchRun, cancel_run, retry_run
from marketsense.orchestrator.schemas import (
    RunAction,
    RunActionRead,
    RunCreate,
    RunPage,
    RunRead,
)
from marketsense.orchestrator.service import RunConflict, create_run, list_runs, read_run

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorRead, "description": f"No `{KEY_HEADER}` header, or an unknown key."},
    403: {"model": ErrorRead, "description": "The key's role may not do this."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorRead, "description": "No such run."}
}
_CONFLICT = "The run's state does not allow this; `detail` says why."


_UNREADABLE: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorRead, "description": "The body is not UTF-8 JSON."}
}


def router(runtime: Runtime, settings: OrchestratorSettings) -> APIRouter:
    """Routes for starting, watching, retrying and cancelling runs."""
    api = APIRouter(prefix="/v1/runs", tags=["runs"], responses=_AUTH_ERRORS)
    Reader = Annotated[Principal, Depends(require(runtime.keyring, Role.READER))]
    Publisher = Annotated[Principal, Depends(require(runtime.keyring, Role.PUBLISHER))]

    @api.post(
        "",
        response_model=RunRead,
        status_code=status.HTTP_201_CREATED,
        summary="Start a run for a trading day over a universe of symbols.",
        responses={
            **_UNREADABLE,
            409: {"model": ErrorRead, "description": "The day already has a live run."},
            422: {"description": "The request names a bad day or bad symbols."},
        },
    )
    async def post_run(body: RunCreate, principal: Publisher) -> RunRead:
        if len(body.universe) > settings.max_symbols:
            raise HTTPException(
                422,
                f"{len(body.universe)} symbols is more than the limit of {settings.max_symbols}",
            )
        try:
            run_id = await create_run(
                runtime=runtime,
                as_of=body.as_of,
                symbols=body.universe,
                lookback_days=settings.lookback_days,
                failure_threshold=settings.failure_threshold,
                actor=principal.name,
            )
        except RunConflict as exc:
            raise HTTPException(409, str(exc)) from exc
        return await _get(run_id)

    @api.get(
        "",
        response_model=RunPage,
        summary="Runs, newest first, optionally of one state or trading day.",
        responses={422: {"model": ErrorRead, "description": "A bad filter or cursor."}},
    )
    async def get_runs(
        _principal: Reader,
        state: Annotated[RunState | None, Query(description="Only runs in this state.")] = None,
        as_of: Annotated[dt.date | None, Query(description="Only runs for this day.")] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="Runs per page.")] = 50,
        cursor: Annotated[
            str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
        ] = None,
    ) -> RunPage:
        async with runtime.database.session() as session:
            try:
                return await list_runs(
                    session=session, state=state, as_of=as_of, limit=limit, cursor=cursor
                )
            except ValueError as exc:
                raise HTTPException(422, str(exc)) from exc

    @api.get(
        "/{run_id}",
        response_model=RunRead,
        summary="A run's state, task counts per stage, and failed symbols.",
        responses=_NOT_FOUND,
    )
    async def get_run(run_id: str, _principal: Reader) -> RunRead:
        return await _get(run_id)

    @api.post(
        "/{run_id}/retry",
        response_model=RunActionRead,
        summary="Re-queue the run's failed tasks (and only those); the run goes back to RUNNING.",
        responses={
            **_NOT_FOUND,
            **_UNREADABLE,
            409: {"model": ErrorRead, "description": _CONFLICT},
        },
    )
    async def post_retry(run_id: str, body: RunAction, principal: Publisher) -> RunActionRead:
        try:
            tasks = await retry_run(
                runtime=runtime,
                run_id=run_id,
                actor=principal.name,
                reason=body.reason,
                lookback_days=settings.lookback_days,
            )
        except NoSuchRun as exc:
            raise HTTPException(404, f"no run with id {run_id}") from exc
        except ActionRefused as exc:
            raise HTTPException(409, f"cannot retry: {exc}") from exc
        return RunActionRead(run=await _get(run_id), tasks=tasks)

    @api.post(
        "/{run_id}/cancel",
        response_model=RunActionRead,
        summary="Cancel a PENDING or RUNNING run and its unfinished tasks.",
        responses={
            **_NOT_FOUND,
            **_UNREADABLE,
            409: {"model": ErrorRead, "description": _CONFLICT},
        },
    )
    async def post_cancel(run_id: str, body: RunAction, principal: Publisher) -> RunActionRead:
        try:
            tasks = await cancel_run(
                runtime=runtime, run_id=run_id, actor=principal.name, reason=body.reason
            )
        except NoSuchRun as exc:
            raise HTTPException(404, f"no run with id {run_id}") from exc
        except ActionRefused as exc:
            raise HTTPException(409, f"cannot cancel: {exc}") from exc
        return RunActionRead(run=await _get(run_id), tasks=tasks)

    async def _get(run_id: str) -> RunRead:
        async with runtime.database.session() as session:
            run = await read_run(session=session, run_id=run_id)
        if run is None:
            raise HTTPException(404, f"no run with id {run_id}")
        return run

    return api
