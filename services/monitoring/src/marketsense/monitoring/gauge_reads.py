"""Reads behind the Prometheus gauges: which versions are recent, their newest drift, and the
day a model last predicted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Integer, cast, func, select

from marketsense.common.db.models import DriftMeasurement, PerformanceDay, Prediction, Run
from marketsense.common.runtime import Runtime


@dataclass(frozen=True)
class RunDrift:
    """A version's drift in the newest run measured: each feature's largest KS statistic, and
    how many features drifted."""

    run_id: str
    statistics: dict[str, float]
    drifted: int


async def recent_versions(runtime: Runtime, *, model: str, days: int) -> list[str]:
    """Versions of `model` with daily figures or drift within `days` calendar days of the
    newest such day of the model, newest first: the only ones the gauges report."""
    performance = select(
        PerformanceDay.model_version.label("version"), func.max(PerformanceDay.day).label("day")
    ).where(PerformanceDay.model_name == model)
    drift = select(
        DriftMeasurement.model_version.label("version"), func.max(DriftMeasurement.as_of)
    ).where(DriftMeasurement.model_name == model)
    async with runtime.database.session() as session:
        newest: dict[str, dt.date] = {}
        for query in (performance, drift):
            for version, day in await session.execute(query.group_by("version")):
                newest[version] = max(day, newest.get(version, day))
    if not newest:
        return []
    since = max(newest.values()) - dt.timedelta(days=days)
    recent = [(day, version) for version, day in newest.items() if day >= since]
    return [version for _, version in sorted(recent, reverse=True)]


async def newest_drift(runtime: Runtime, *, model: str, version: str) -> RunDrift | None:
    """The version's drift in its newest measured run (latest day, then latest measured);
    None when it has none."""
    newest = (
        select(DriftMeasurement.run_id)
        .where(DriftMeasurement.model_name == model, DriftMeasurement.model_version == version)
        .order_by(DriftMeasurement.as_of.desc(), DriftMeasurement.created_at.desc())
        .limit(1)
    )
    async with runtime.database.session() as session:
        run_id = await session.scalar(newest)
        if run_id is None:
            return None
        query = (
            select(
                DriftMeasurement.feature,
                func.max(DriftMeasurement.statistic),
                func.max(cast(DriftMeasurement.drifted, Integer)),
            )
            .where(
                DriftMeasurement.run_id == run_id,
                DriftMeasurement.model_name == model,
                DriftMeasurement.model_version == version,
            )
            .group_by(DriftMeasurement.feature)
        )
        rows = (await session.execute(query)).all()
    return RunDrift(
        run_id=run_id,
        statistics={feature: float(statistic) for feature, statistic, _ in rows},
        drifted=sum(1 for *_, drifted in rows if drifted),
    )


async def last_prediction_day(runtime: Runtime, *, model: str, runs: int = 20) -> dt.date | None:
    """The newest day `model` predicted for, in the newest `runs` runs; None when none of them
    holds a prediction of it."""
    # Through the runs, so each look-up uses the predictions' (run_id, ...) index instead of
    # scanning every prediction ever stored on each refresh.
    newest = select(Run.id).order_by(Run.as_of.desc(), Run.created_at.desc()).limit(runs)
    async with runtime.database.session() as session:
        for run_id in list(await session.scalars(newest)):
            day: dt.date | None = await session.scalar(
                select(func.max(Prediction.as_of)).where(
                    Prediction.run_id == run_id, Prediction.model_name == model
                )
            )
            if day is not None:
                return day
    return None
