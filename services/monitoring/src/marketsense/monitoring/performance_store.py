"""Daily performance kept up to date: the days whose outcomes changed are computed again, all in
one pass, and upserted."""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import math
from collections.abc import Hashable, Mapping, Sequence

import pandas as pd
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import Outcome, PerformanceDay
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.performance_types import DAILY_COLUMNS, RESOLVED_COLUMNS

log = logging.getLogger(__name__)

HORIZON_DAYS = 1
"""The horizon daily performance judges: the strategy trades each session's predictions once."""
DAYS_AT_ONCE = 500
"""Outcome days named in one query."""


async def update_performance(
    runtime: Runtime, settings: MonitoringSettings, *, model: str, version: str
) -> list[dt.date]:
    """Compute again and store the version's days whose outcomes are new or changed; the days."""
    async with runtime.database.session() as session:
        counts = await _outcome_counts(session, model=model, version=version)
        stored = await _stored_counts(session, model=model, version=version)
    days = sorted(counts)
    changed = [day for day in days if stored.get(day) != counts[day]]
    if not changed:
        return []
    # Each changed day's turnover is against the book of the day before it, so that day's
    # predictions are read too (and its row, computed without its own predecessor, dropped).
    wanted = set(changed)
    for day in changed:
        at = bisect.bisect_left(days, day)
        if at > 0:
            wanted.add(days[at - 1])
    async with runtime.database.session() as session:
        resolved = await _resolved(session, model=model, version=version, days=sorted(wanted))
        benchmark = await _benchmark(session, settings, days=sorted(wanted))
    if benchmark is not None:
        changed = _with_benchmark(changed, benchmark, symbol=settings.benchmark_symbol)
        # A day read only for its book (the one before a changed day) has its row dropped.
        benchmark = benchmark.reindex(sorted(wanted), fill_value=0.0)
    figures = daily_figures(
        resolved,
        quantile=settings.strategy_quantile,
        cost_bps=settings.strategy_cost_bps,
        benchmark=benchmark,
    )
    figures = figures[figures.index.isin(changed)]
    async with runtime.transaction() as session:
        await _upsert(session, figures, model=model, version=version)
    log.info("daily performance of %s %s: %d day(s) computed", model, version, len(figures))
    return [day for day in figures.index]


def _of_version(model: str, version: str) -> tuple[ColumnElement[bool], ...]:
    """The conditions selecting a version's outcomes of the judged horizon."""
    return (
        Outcome.model_name == model,
        Outcome.model_version == version,
        Outcome.horizon_days == HORIZON_DAYS,
    )


async def _outcome_counts(session: AsyncSession, *, model: str, version: str) -> dict[dt.date, int]:
    """Symbols with an outcome per outcome day (a symbol predicted twice counts once)."""
    found = await session.execute(
        select(Outcome.outcome_day, func.count(func.distinct(Outcome.symbol)))
        .where(*_of_version(model, version))
        .group_by(Outcome.outcome_day)
    )
    return {day: count for day, count in found.all()}


async def _stored_counts(session: AsyncSession, *, model: str, version: str) -> dict[dt.date, int]:
    """Predictions each stored daily row was computed from."""
    found = await session.execute(
        select(PerformanceDay.day, PerformanceDay.predictions).where(
            PerformanceDay.model_name == model, PerformanceDay.model_version == version
        )
    )
    return {day: count for day, count in found.all()}


async def _resolved(
    session: AsyncSession, *, model: str, version: str, days: Sequence[dt.date]
) -> pd.DataFrame:
    """The version's resolved predictions of the days (RESOLVED_COLUMNS); of a symbol predicted
    twice for one day (a run made again), the newest prediction."""
    rows: list[tuple[object, ...]] = []
    for first in range(0, len(days), DAYS_AT_ONCE):
        found = await session.execute(
            select(
                Outcome.prediction_id,
                Outcome.symbol,
                Outcome.as_of,
                Outcome.outcome_day,
                Outcome.prob_up,
                Outcome.realized_return,
            ).where(
                *_of_version(model, version),
                Outcome.outcome_day.in_(days[first : first + DAYS_AT_ONCE]),
            )
        )
        rows.extend(tuple(row) for row in found.all())
    frame = pd.DataFrame(rows, columns=["prediction_id", *RESOLVED_COLUMNS])
    frame = frame.sort_values("prediction_id").drop_duplicates(
        ["symbol", "outcome_day"], keep="last"
    )
    frame = frame.sort_values(["outcome_day", "symbol"]).reset_index(drop=True)
    return frame[list(RESOLVED_COLUMNS)].astype({"prob_up": float, "realized_return": float})


async def _benchmark(
    session: AsyncSession, settings: MonitoringSettings, *, days: Sequence[dt.date]
) -> pd.Series | None:
    """The configured benchmark symbol's realised next-session returns by outcome day, from
    its outcomes (any model's: the market's move is the same); None for the default."""
    if settings.benchmark_symbol is None:
        return None
    found: dict[dt.date, float] = {}
    for first in range(0, len(days), DAYS_AT_ONCE):
        rows = await session.execute(
            select(Outcome.outcome_day, Outcome.realized_return)
            .where(
                Outcome.symbol == settings.benchmark_symbol,
                Outcome.horizon_days == HORIZON_DAYS,
                Outcome.outcome_day.in_(days[first : first + DAYS_AT_ONCE]),
            )
            .distinct()
        )
        found.update({day: float(value) for day, value in rows.all()})
    return pd.Series(found, name="benchmark", dtype=float).sort_index()


def _with_benchmark(
    changed: list[dt.date], benchmark: pd.Series, *, symbol: str | None
) -> list[dt.date]:
    """The changed days the benchmark symbol has a return for; the others wait for it."""
    lacking = [day for day in changed if day not in benchmark.index]
    if lacking:
        log.warning(
            "benchmark_symbol %s has no outcome on %d day(s) (first %s), left uncomputed: is it "
            "in the universe, and did its run succeed?",
            symbol,
            len(lacking),
            lacking[0],
        )
    return [day for day in changed if day in benchmark.index]


async def _upsert(
    session: AsyncSession, figures: pd.DataFrame, *, model: str, version: str
) -> None:
    """Insert the days' rows, replacing those stored for the same version and day."""
    if figures.empty:
        return
    rows = [
        {"model_name": model, "model_version": version, "day": day, **_finite(values)}
        for day, values in zip(
            figures.index, figures[list(DAILY_COLUMNS)].to_dict("records"), strict=True
        )
    ]
    keys = ["model_name", "model_version", "day"]
    table = sqlite.insert(PerformanceDay)
    if session.get_bind().dialect.name != "sqlite":
        table = postgresql.insert(PerformanceDay)  # type: ignore[assignment]
    statement = table.on_conflict_do_update(
        index_elements=keys, set_={column: table.excluded[column] for column in DAILY_COLUMNS}
    )
    await session.execute(statement, rows)


def _finite(values: Mapping[Hashable, object]) -> dict[str, object]:
    """A day's figures for the database: an undefined figure (NaN) is NULL, counts are ints."""
    out: dict[str, object] = {}
    for key, value in values.items():
        column = str(key)
        if isinstance(value, float) and not math.isfinite(value):
            out[column] = None
        elif column in ("predictions", "hits", "book_positions", "book_hits"):
            out[column] = int(value)  # type: ignore[call-overload]
        else:
            out[column] = float(value)  # type: ignore[arg-type]
    return out
