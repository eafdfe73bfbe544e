"""What the monitoring API reads: window figures per version, the daily series, drift and decay
alerts, with the refusals a client can act on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import DecayAlert, DriftMeasurement, ModelAlias, PerformanceDay
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.performance_reads import daily_frame, monitored_versions
from marketsense.monitoring.performance_types import WindowFigures
from marketsense.monitoring.windows import window_figures

PRODUCTION_ALIAS = "production"


class NotMonitored(LookupError):
    """The model, or the version, has no stored daily figures."""


class WindowNotConfigured(ValueError):
    """A window the settings do not list."""


async def versions_of(runtime: Runtime, *, model: str, version: str | None) -> list[str]:
    """The model's versions with daily figures (or only `version`); NotMonitored when none."""
    versions = [v for _, v in await monitored_versions(runtime, model=model)]
    if not versions:
        raise NotMonitored(
            f"model {model!r} has no stored performance: no outcome of its predictions has been "
            "resolved yet, or the name is wrong"
        )
    if version is None:
        return versions
    if version not in versions:
        raise NotMonitored(
            f"version {version!r} of model {model!r} has no stored performance; "
            f"versions with figures: {', '.join(sorted(versions))}"
        )
    return [version]


def windows_asked(settings: MonitoringSettings, window: int | None) -> list[int]:
    """Every configured window, or the one asked; WindowNotConfigured for another."""
    if window is None:
        return list(settings.performance_windows)
    if window not in settings.performance_windows:
        configured = ", ".join(str(w) for w in settings.performance_windows)
        raise WindowNotConfigured(
            f"window {window} is not configured; the setting performance_windows lists {configured}"
        )
    return [window]


async def aliases_of(session: AsyncSession, *, model: str) -> dict[str, list[str]]:
    """The registry's aliases of a model, by the version (as text) they name."""
    rows = await session.execute(
        select(ModelAlias.alias, ModelAlias.version)
        .where(ModelAlias.model_name == model)
        .order_by(ModelAlias.alias)
    )
    named: dict[str, list[str]] = {}
    for alias, version in rows:
        named.setdefault(str(version), []).append(alias)
    return named


def production_first(versions: Sequence[str], aliases: dict[str, list[str]]) -> list[str]:
    """The versions with the one `production` names first, the others in their given order."""
    return sorted(versions, key=lambda v: PRODUCTION_ALIAS not in aliases.get(v, []))


async def version_figures(
    runtime: Runtime, *, model: str, version: str, windows: Sequence[int]
) -> list[WindowFigures]:
    """The version's figures over each window (read once, over the longest)."""
    daily = await daily_frame(runtime, model=model, version=version, last=max(windows))
    found = [window_figures(daily, window) for window in windows]
    return [figures for figures in found if figures is not None]


async def daily_rows(
    session: AsyncSession, *, model: str, version: str, limit: int, before: dt.date | None
) -> list[PerformanceDay]:
    """Up to `limit + 1` daily rows of a version, newest day first, before `before` if given."""
    query = select(PerformanceDay).where(
        PerformanceDay.model_name == model, PerformanceDay.model_version == version
    )
    if before is not None:
        query = query.where(PerformanceDay.day < before)
    query = query.order_by(PerformanceDay.day.desc()).limit(limit + 1)
    return list(await session.scalars(query))


async def drift_rows(
    session: AsyncSession, *, run_id: str | None, model: str | None, limit: int
) -> list[DriftMeasurement]:
    """Stored drift measurements, newest run first, then by feature."""
    query = select(DriftMeasurement)
    if run_id is not None:
        query = query.where(DriftMeasurement.run_id == run_id)
    if model is not None:
        query = query.where(DriftMeasurement.model_name == model)
    query = query.order_by(
        DriftMeasurement.as_of.desc(),
        DriftMeasurement.run_id,
        DriftMeasurement.model_version,
        DriftMeasurement.feature,
    )
    return list(await session.scalars(query.limit(limit)))


async def decay_alert_rows(
    session: AsyncSession, *, model: str | None, limit: int, before_id: int | None
) -> list[DecayAlert]:
    """Up to `limit + 1` decay alerts, newest first, older than `before_id` if given."""
    query = select(DecayAlert)
    if model is not None:
        query = query.where(DecayAlert.model_name == model)
    if before_id is not None:
        query = query.where(DecayAlert.id < before_id)
    return list(await session.scalars(query.order_by(DecayAlert.id.desc()).limit(limit + 1)))
