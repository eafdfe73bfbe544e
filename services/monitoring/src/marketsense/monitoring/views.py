"""Monitoring routes: live performance per model version and window, the daily series, feature
drift and decay alerts. Reading them needs a reader key."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from marketsense.common.api_models import (
    AUTH_ERRORS,
    CURSOR_INVALID,
    ID_CURSOR_PATTERN,
    error_response,
    row_id,
    validation_error,
)
from marketsense.monitoring.challenge_views import router as challenge_router
from marketsense.monitoring.deps import ReaderKey, RuntimeDep, SessionDep, SettingsDep
from marketsense.monitoring.queries import (
    NotMonitored,
    WindowNotConfigured,
    aliases_of,
    daily_rows,
    decay_alert_rows,
    drift_cursor,
    drift_position,
    drift_rows,
    production_first,
    version_figures,
    versions_of,
    windows_asked,
)
from marketsense.monitoring.schemas import (
    DecayAlertPage,
    DecayAlertRead,
    DriftPage,
    DriftRead,
    PerformanceDayPage,
    PerformanceDayRead,
    PerformanceRead,
    VersionPerformanceRead,
    WindowFiguresRead,
)

router = APIRouter(prefix="/v1", tags=["monitoring"], responses=AUTH_ERRORS)

ModelName = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        description="Registered model; default: the setting `monitored_model`.",
    ),
]
VersionName = Annotated[
    str | None, Query(min_length=1, max_length=64, description="Only this model version.")
]
Limit = Annotated[int, Query(ge=1, le=500, description="Entries per page, 1 to 500.")]
_DAY_CURSOR = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
NOT_MONITORED = error_response(404, "The model, or the version, has no stored performance.")


@router.get(
    "/performance",
    response_model=PerformanceRead,
    summary="A model's figures per window, the production version and challengers side by side.",
    responses={**NOT_MONITORED, **error_response(422, "A window the settings do not list.")},
)
async def get_performance(
    _key: ReaderKey,
    runtime: RuntimeDep,
    session: SessionDep,
    settings: SettingsDep,
    model: ModelName = None,
    version: VersionName = None,
    window: Annotated[
        int | None,
        Query(ge=2, le=2520, description="Only this window (trading days); default: every one."),
    ] = None,
) -> PerformanceRead:
    name = model or settings.monitored_model
    try:
        windows = windows_asked(settings, window)
        versions = await versions_of(runtime, model=name, version=version)
    except WindowNotConfigured as exc:
        raise validation_error(("query", "window"), str(exc)) from exc
    except NotMonitored as exc:
        raise HTTPException(404, str(exc)) from exc
    aliases = await aliases_of(session, model=name)
    shown = []
    for each in production_first(versions, aliases):
        figures = await version_figures(runtime, model=name, version=each, windows=windows)
        shown.append(
            VersionPerformanceRead(
                version=each,
                aliases=aliases.get(each, []),
                last_day=max(f.last_day for f in figures),
                windows=[WindowFiguresRead.model_validate(dataclasses.asdict(f)) for f in figures],
            )
        )
    return PerformanceRead(
        model=name,
        windows=windows,
        decay_ratio=settings.decay_ratio,
        decay_reference_days=settings.decay_reference_days,
        versions=shown,
    )


@router.get(
    "/performance/daily",
    response_model=PerformanceDayPage,
    summary="A model version's daily figures, newest day first, a page at a time.",
    responses={**NOT_MONITORED, **error_response(422, "A bad cursor or limit.")},
)
async def get_performance_daily(
    _key: ReaderKey,
    runtime: RuntimeDep,
    session: SessionDep,
    settings: SettingsDep,
    model: ModelName = None,
    version: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Model version; default: the one judged most recently.",
        ),
    ] = None,
    limit: Limit = 100,
    cursor: Annotated[
        str | None,
        Query(
            pattern=_DAY_CURSOR,
            max_length=10,
            description="`next_cursor` of the previous page, unchanged (a day).",
        ),
    ] = None,
) -> PerformanceDayPage:
    name = model or settings.monitored_model
    try:
        before = None if cursor is None else dt.date.fromisoformat(cursor)
    except ValueError as exc:
        raise validation_error(("query", "cursor"), CURSOR_INVALID) from exc
    try:
        chosen = (await versions_of(runtime, model=name, version=version))[0]
    except NotMonitored as exc:
        raise HTTPException(404, str(exc)) from exc
    rows = await daily_rows(session, model=name, version=chosen, limit=limit, before=before)
    page = rows[:limit]
    return PerformanceDayPage(
        model=name,
        version=chosen,
        items=[PerformanceDayRead.model_validate(row) for row in page],
        next_cursor=page[-1].day.isoformat() if len(rows) > limit else None,
    )


@router.get(
    "/drift",
    response_model=DriftPage,
    summary="Feature drift measured per run against the served version's reference, newest first.",
    responses=error_response(422, "A bad filter, cursor or limit."),
)
async def get_drift(
    _key: ReaderKey,
    session: SessionDep,
    run_id: Annotated[str | None, Query(max_length=36, description="Only this run's.")] = None,
    model: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Only this model's.")
    ] = None,
    limit: Limit = 100,
    cursor: Annotated[
        str | None,
        Query(max_length=600, description="`next_cursor` of the previous page, unchanged."),
    ] = None,
) -> DriftPage:
    try:
        after = None if cursor is None else drift_position(cursor)
    except ValueError as exc:
        raise validation_error(("query", "cursor"), str(exc)) from exc
    rows = await drift_rows(session, run_id=run_id, model=model, limit=limit, after=after)
    page = rows[:limit]
    return DriftPage(
        items=[DriftRead.model_validate(row) for row in page],
        next_cursor=drift_cursor(page[-1]) if len(rows) > limit else None,
    )


@router.get(
    "/decay-alerts",
    response_model=DecayAlertPage,
    summary="Decays the policy found, newest first, a page at a time.",
    responses=error_response(422, "A bad cursor or limit."),
)
async def get_decay_alerts(
    _key: ReaderKey,
    session: SessionDep,
    model: Annotated[
        str | None, Query(min_length=1, max_length=128, description="Only this model's.")
    ] = None,
    limit: Limit = 100,
    cursor: Annotated[
        str | None,
        Query(
            pattern=ID_CURSOR_PATTERN,
            max_length=19,
            description="`next_cursor` of the previous page, unchanged (an alert's id).",
        ),
    ] = None,
) -> DecayAlertPage:
    try:
        before_id = None if cursor is None else row_id(cursor)
    except ValueError as exc:
        raise validation_error(("query", "cursor"), str(exc)) from exc
    rows = await decay_alert_rows(session, model=model, limit=limit, before_id=before_id)
    page = rows[:limit]
    return DecayAlertPage(
        items=[DecayAlertRead.model_validate(row) for row in page],
        next_cursor=str(page[-1].id) if len(rows) > limit else None,
    )


router.include_router(challenge_router)
