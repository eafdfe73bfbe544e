"""Run routes: readers watch runs, publishers start, retry and cancel them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.api_models import (
    AUTH_ERRORS,
    SYMBOLS,
    UNREADABLE_BODY,
    IsoDay,
    counted_then_checked,
    distinct_symbols,
    error_response,
    validation_error,
)
from marketsense.common.app import Describe
from marketsense.common.calendar import exchange_calendar
from marketsense.common.states import RunState
from marketsense.orchestrator.deps import (
    PublisherKey,
    ReaderKey,
    RuntimeDep,
    SessionDep,
    SettingsDep,
)
from marketsense.orchestrator.runs.flows import (
    ActionRefused,
    NoSuchRun,
    RunConflict,
    cancel_run,
    retry_run,
    start_run,
)
from marketsense.orchestrator.runs.schemas import (
    RunAction,
    RunActionRead,
    RunCreate,
    RunPage,
    RunRead,
)
from marketsense.orchestrator.runs.service import RUN_CURSOR_PATTERN, list_runs, read_run

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=AUTH_ERRORS)

_NOT_FOUND = error_response(404, "No such run.")
_CONFLICT = error_response(409, "The run's state does not allow this; `detail` says why.")


async def _run(session: AsyncSession, run_id: str) -> RunRead:
    """A run as the API shows it, or 404."""
    run = await read_run(session=session, run_id=run_id)
    if run is None:
        raise HTTPException(404, f"no run with id {run_id}")
    return run


@router.post(
    "",
    response_model=RunRead,
    status_code=status.HTTP_201_CREATED,
    summary="Start a run for a trading day over a universe of symbols.",
    responses={
        **UNREADABLE_BODY,
        **error_response(409, "The day already has a live run."),
        422: {
            "description": "The request names bad symbols, or a day that is not a session of "
            "the orchestrator's exchange (the message names the next one)."
        },
    },
)
async def post_run(
    body: RunCreate,
    principal: PublisherKey,
    runtime: RuntimeDep,
    settings: SettingsDep,
    session: SessionDep,
) -> RunRead:
    _check_session(body.as_of, exchange=settings.exchange)
    loc = ("body", "universe")
    symbols = counted_then_checked(
        SYMBOLS, body.universe, limit=settings.max_symbols, loc=loc, noun="symbols"
    )
    try:
        run_id = await start_run(
            runtime=runtime,
            as_of=body.as_of,
            symbols=distinct_symbols(symbols, loc=loc),
            lookback_days=settings.lookback_days,
            failure_threshold=settings.failure_threshold,
            actor=principal.name,
        )
    except RunConflict as exc:
        raise HTTPException(409, str(exc)) from exc
    return await _run(session, run_id)


def _check_session(day: dt.date, *, exchange: str) -> None:
    """Nothing if the exchange trades on `day`; else a 422 naming the next session."""
    calendar = exchange_calendar(exchange)
    try:
        if calendar.is_session(day):
            return
        message = calendar.not_a_session(day)
    except ValueError as exc:  # before the exchange's first session in the calendar
        message = str(exc)
    raise validation_error(("body", "as_of"), message)


@router.get(
    "",
    response_model=RunPage,
    summary="Runs, newest first, optionally of one state or trading day.",
    responses=error_response(422, "A bad filter or cursor."),
)
async def get_runs(
    _key: ReaderKey,
    session: SessionDep,
    state: Annotated[RunState | None, Query(description="Only runs in this state.")] = None,
    as_of: Annotated[IsoDay | None, Query(description="Only runs for this day.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Runs per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=RUN_CURSOR_PATTERN,
            max_length=200,
            description="`next_cursor` of the previous page, unchanged (URL-safe base64).",
        ),
    ] = None,
) -> RunPage:
    try:
        return await list_runs(
            session=session, state=state, as_of=as_of, limit=limit, cursor=cursor
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get(
    "/{run_id}",
    response_model=RunRead,
    summary="A run's state, task counts per stage, and failed symbols.",
    responses=_NOT_FOUND,
)
async def get_run(run_id: str, _key: ReaderKey, session: SessionDep) -> RunRead:
    return await _run(session, run_id)


@router.post(
    "/{run_id}/retry",
    response_model=RunActionRead,
    summary="Re-queue the run's failed tasks (and only those); the run goes back to RUNNING.",
    responses={**_NOT_FOUND, **UNREADABLE_BODY, **_CONFLICT},
)
async def post_retry(
    run_id: str,
    body: RunAction,
    principal: PublisherKey,
    runtime: RuntimeDep,
    settings: SettingsDep,
    session: SessionDep,
) -> RunActionRead:
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
    return RunActionRead(run=await _run(session, run_id), tasks=tasks)


@router.post(
    "/{run_id}/cancel",
    response_model=RunActionRead,
    summary="Cancel a PENDING or RUNNING run and its unfinished tasks.",
    responses={**_NOT_FOUND, **UNREADABLE_BODY, **_CONFLICT},
)
async def post_cancel(
    run_id: str,
    body: RunAction,
    principal: PublisherKey,
    runtime: RuntimeDep,
    session: SessionDep,
) -> RunActionRead:
    try:
        tasks = await cancel_run(
            runtime=runtime, run_id=run_id, actor=principal.name, reason=body.reason
        )
    except NoSuchRun as exc:
        raise HTTPException(404, f"no run with id {run_id}") from exc
    except ActionRefused as exc:
        raise HTTPException(409, f"cannot cancel: {exc}") from exc
    return RunActionRead(run=await _run(session, run_id), tasks=tasks)


def describe_symbol_limit(max_symbols: int) -> Describe:
    """An OpenAPI edit stating the universe limit the service was configured with."""

    def describe(document: dict[str, Any]) -> None:
        universe = document["components"]["schemas"]["RunCreate"]["properties"]["universe"]
        universe["maxItems"] = max_symbols

    return describe
