"""Which drift is worth an alert: a feature that drifted in each of a version's latest runs, among
those a single day's cross-section does not make drift by itself.

A daily run's features are one row per symbol on one day, and every symbol shares that day's
market move: the trend features (returns, RSI, MACD) of a normal day's cross-section sit off the
reference's many-day distribution on 6 to 60 of 108 simulated days (docs/monitoring.md, "Drift").
They are measured and shown but kept quiet (`drift_quiet_features`): alone they would alert
most days. The others alert once they drift run after run, as prices from outside the training
data do.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select

from marketsense.common.db.models import DriftMeasurement
from marketsense.common.runtime import Runtime
from marketsense.monitoring.performance_types import DriftFigure


def persistent_drift(
    latest: Sequence[Sequence[DriftFigure]], *, runs: int, quiet: Collection[str]
) -> list[DriftFigure]:
    """The newest run's drifted features that drifted in each of the `runs` latest runs (newest
    first in `latest`) and are not `quiet`; [] while fewer runs were measured."""
    if runs < 1 or len(latest) < runs:
        return []
    drifted_in = [{f.feature for f in figures if f.drifted} for figures in latest[:runs]]
    lasting = set.intersection(*drifted_in) - set(quiet)
    return [f for f in latest[0] if f.feature in lasting]


async def latest_drift(
    runtime: Runtime, *, model: str, version: str, runs: int
) -> list[list[DriftFigure]]:
    """The version's drift figures of its `runs` latest measured runs, newest first."""
    async with runtime.database.session() as session:
        run_ids = list(
            await session.execute(
                select(DriftMeasurement.run_id, DriftMeasurement.as_of)
                .where(
                    DriftMeasurement.model_name == model,
                    DriftMeasurement.model_version == version,
                )
                .group_by(DriftMeasurement.run_id, DriftMeasurement.as_of)
                .order_by(DriftMeasurement.as_of.desc(), DriftMeasurement.run_id.desc())
                .limit(runs)
            )
        )
        rows = list(
            await session.scalars(
                select(DriftMeasurement).where(
                    DriftMeasurement.model_name == model,
                    DriftMeasurement.model_version == version,
                    DriftMeasurement.run_id.in_([run_id for run_id, _ in run_ids]),
                )
            )
        )
    by_run: dict[str, list[DriftFigure]] = {run_id: [] for run_id, _ in run_ids}
    for row in rows:
        by_run[row.run_id].append(
            DriftFigure(
                feature=row.feature,
                statistic=row.statistic,
                p_value=row.p_value,
                rows=row.rows,
                reference_rows=row.reference_rows,
                drifted=row.drifted,
            )
        )
    return [by_run[run_id] for run_id, _ in run_ids]
