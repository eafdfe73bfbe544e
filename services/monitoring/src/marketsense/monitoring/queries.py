"""What the monitoring API reads: window figures per version, the daily series, drift and decay
alerts, with the refusals a client can act on."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.api_models import CURSOR_INVALID
from marketsense.common.db.models import DecayAlert, DriftMeasurement, ModelAlias, PerformanceDay
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.performance_reads import daily_frame, monitored_versions
from marketsense.monitoring.performance_types import WindowFigures
from marketsense.monitoring.windows import window_figures

PRODUCTION_ALIAS = "production"

DriftPosition = tuple[dt.date, str, str, str, str]
"""Where a page of drift measurements ended: as_of, run_id, model, version, feature."""


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


def drift_cursor(row: DriftMeasurement) -> str:
    """An opaque cursor naming a drift measurement's place in the listing."""
    position = [row.as_of.isoformat(), row.run_id, row.model_name, row.model_version, row.feature]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def drift_position(text: str) -> DriftPosition:
    """The place a drift cursor names; ValueError for anything `drift_cursor` did not write."""
    try:
        padded = text + "=" * (-len(text) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
            raise ValueError(CURSOR_INVALID)
        day, run_id, model, version, feature = value
        return dt.date.fromisoformat(day), run_id, model, version, feature
    except (UnicodeError, binascii.Error, TypeError, ValueError) as error:
        raise ValueError(CURSOR_INVALID) from error


async def drift_rows(
    session: AsyncSession,
    *,
    run_id: str | None,
    model: str | None,
    limit: int,
    after: DriftPosition | None = None,
) -> list[DriftMeasurement]:
    """Up to `limit + 1` drift measurements, newest run first, then by model, version and
    feature, after `after` if given."""
    table = DriftMeasurement
    query = select(table)
    if run_id is not None:
        query = query.where(table.run_id == run_id)
    if model is not None:
        query = query.where(table.model_name == model)
    if after is not None:
        rest = tuple_(table.run_id, table.model_name, table.model_version, table.feature)
        query = query.where(
            or_(table.as_of < after[0], and_(table.as_of == after[0], rest > tuple_(*after[1:])))
        )
    query = query.order_by(
        table.as_of.desc(), table.run_id, table.model_name, table.model_version, table.feature
    )
    return list(await session.scalars(query.limit(limit + 1)))


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
