"""Backfill routes: publishers start or resume a backfill, readers watch it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.api_models import (
    AUTH_ERRORS,
    SYMBOLS,
    UNREADABLE_BODY,
    counted_then_checked,
    distinct_symbols,
    error_response,
    validation_error,
)
from marketsense.common.app import Describe
from marketsense.common.calendar import DEFAULT_EXCHANGE, exchange_calendar
from marketsense.orchestrator.backfills.flows import request_backfill
from marketsense.orchestrator.backfills.schemas import BackfillCreate, BackfillRead
from marketsense.orchestrator.backfills.service import (
    EmptyRange,
    SessionRange,
    backfill_run,
    prediction_count,
    session_range,
)
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.deps import (
    PublisherKey,
    ReaderKey,
    RuntimeDep,
    SessionDep,
    SettingsDep,
)
from marketsense.orchestrator.runs.service import read_run

router = APIRouter(prefix="/v1/backfills", tags=["backfills"], responses=AUTH_ERRORS)


def exchange_of(settings: OrchestratorSettings) -> str:
    """The exchange whose sessions a backfill covers: the service's, or the default one."""
    return str(getattr(settings, "exchange", DEFAULT_EXCHANGE))


def sessions_of(body: BackfillCreate, settings: OrchestratorSettings) -> SessionRange:
    """The sessions a request covers, or a 422 naming what to fix."""
    try:
        return session_range(
            exchange_calendar(exchange_of(settings)), start=body.start, end=body.end
        )
    except ValueError as exc:  # EmptyRange, or a day outside the calendar
        loc = ("body", "end") if isinstance(exc, EmptyRange) else ("body", "start")
        raise validation_error(loc, str(exc)) from exc


async def backfill_read(
    session: AsyncSession,
    run_id: str,
    *,
    exchange: str,
    requeued: int = 0,
    notes: list[str] | None = None,
) -> BackfillRead:
    """A backfill as the API shows it, or 404."""
    run = await backfill_run(session, run_id=run_id)
    read = None if run is None else await read_run(session=session, run_id=run_id)
    if run is None or run.start is None or read is None:
        raise HTTPException(404, f"no backfill with id {run_id}")
    sessions = exchange_calendar(exchange).sessions(run.start, run.as_of)
    return BackfillRead(
        run=read,
        sessions=len(sessions),
        predictions=await prediction_count(session, run_id=run_id),
        tasks_requeued=requeued,
        notes=notes or [],
    )


@router.post(
    "",
    response_model=BackfillRead,
    status_code=status.HTTP_201_CREATED,
    summary="Backfill a range of trading days for a set of symbols, as one run.",
    description=(
        "The same request (same sessions and symbols, in any order) returns its run with 200 "
        "rather than starting another: a PARTIAL or FAILED run has its failed tasks retried, "
        "a live one has its waiting tasks' events sent again."
    ),
    responses={
        200: {"model": BackfillRead, "description": "The request's run, found again."},
        **UNREADABLE_BODY,
        422: {"description": "Bad days, an empty or too long range, or bad symbols."},
    },
)
async def post_backfill(
    body: BackfillCreate,
    principal: PublisherKey,
    runtime: RuntimeDep,
    settings: SettingsDep,
    session: SessionDep,
    response: Response,
) -> BackfillRead:
    loc = ("body", "symbols")
    symbols = counted_then_checked(
        SYMBOLS, body.symbols, limit=settings.max_symbols, loc=loc, noun="symbols"
    )
    symbols = distinct_symbols(symbols, loc=loc)
    sessions = sessions_of(body, settings)
    started = await request_backfill(
        runtime=runtime,
        sessions=sessions,
        symbols=symbols,
        lookback_days=settings.lookback_days,
        failure_threshold=(
            settings.failure_threshold if body.failure_threshold is None else body.failure_threshold
        ),
        actor=principal.name,
        reason=body.reason,
    )
    if not started.created:
        response.status_code = status.HTTP_200_OK
    return await backfill_read(
        session,
        started.run_id,
        exchange=exchange_of(settings),
        requeued=started.requeued,
        notes=sessions.notes,
    )


@router.get(
    "/{run_id}",
    response_model=BackfillRead,
    summary="A backfill's run, its sessions and the predictions written so far.",
    responses=error_response(404, "No such backfill."),
)
async def get_backfill(
    run_id: str, _key: ReaderKey, session: SessionDep, settings: SettingsDep
) -> BackfillRead:
    return await backfill_read(session, run_id, exchange=exchange_of(settings))


def describe_backfill_symbol_limit(max_symbols: int) -> Describe:
    """An OpenAPI edit stating the universe limit the service was configured with."""

    def describe(document: dict[str, Any]) -> None:
        symbols = document["components"]["schemas"]["BackfillCreate"]["properties"]["symbols"]
        symbols["maxItems"] = max_symbols

    return describe
