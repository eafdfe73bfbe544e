"""Orchestrator REST routes."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from marketsense.common.runtime import Runtime
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.schemas import ErrorRead, RunCreate, RunRead
from marketsense.orchestrator.service import create_run, read_run


def router(runtime: Runtime, settings: OrchestratorSettings) -> APIRouter:
    """Routes for starting and watching runs."""
    api = APIRouter(prefix="/v1/runs", tags=["runs"])

    @api.post(
        "",
        response_model=RunRead,
        status_code=status.HTTP_201_CREATED,
        summary="Start a run for a trading day over a set of symbols.",
        responses={422: {"description": "The request names a bad day or bad symbols."}},
    )
    async def post_run(body: RunCreate) -> RunRead:
        if len(body.symbols) > settings.max_symbols:
            raise HTTPException(
                422, f"{len(body.symbols)} symbols is more than the limit of {settings.max_symbols}"
            )
        run_id = await create_run(
            runtime=runtime,
            as_of=body.as_of,
            symbols=body.symbols,
            lookback_days=settings.lookback_days,
            failure_threshold=settings.failure_threshold,
        )
        return await _get(run_id)

    @api.get(
        "/{run_id}",
        response_model=RunRead,
        summary="A run's state, task counts per stage, and failed symbols.",
        responses={404: {"model": ErrorRead, "description": "No such run."}},
    )
    async def get_run(run_id: str) -> RunRead:
        return await _get(run_id)

    async def _get(run_id: str) -> RunRead:
        async with runtime.database.session() as session:
            run = await read_run(session=session, run_id=run_id)
        if run is None:
            raise HTTPException(404, f"no run with id {run_id}")
        return run

    return api
