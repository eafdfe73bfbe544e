"""Reads of stored performance: a model version's daily series and the versions that have one."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from marketsense.common.db.models import PerformanceDay
from marketsense.common.runtime import Runtime
from marketsense.monitoring.performance_types import DAILY_COLUMNS


async def daily_frame(
    runtime: Runtime, *, model: str, version: str, last: int | None = None
) -> pd.DataFrame:
    """The version's daily figures (index `day` ascending, DAILY_COLUMNS), its last `last` days
    when given; empty when it has none."""
    query = select(PerformanceDay).where(
        PerformanceDay.model_name == model, PerformanceDay.model_version == version
    )
    query = query.order_by(PerformanceDay.day.desc())
    if last is not None:
        query = query.limit(last)
    async with runtime.database.session() as session:
        rows = list(await session.scalars(query))
    frame = pd.DataFrame(
        [[row.day, *(getattr(row, column) for column in DAILY_COLUMNS)] for row in rows],
        columns=["day", *DAILY_COLUMNS],
    )
    frame[["ic", "rank_ic"]] = frame[["ic", "rank_ic"]].astype(float)
    return frame.set_index("day").sort_index()


async def monitored_versions(
    runtime: Runtime, *, model: str | None = None
) -> list[tuple[str, str]]:
    """(model, version) pairs with stored daily figures, the most recently judged first."""
    query = select(
        PerformanceDay.model_name, PerformanceDay.model_version, func.max(PerformanceDay.day)
    ).group_by(PerformanceDay.model_name, PerformanceDay.model_version)
    if model is not None:
        query = query.where(PerformanceDay.model_name == model)
    async with runtime.database.session() as session:
        found = (await session.execute(query)).all()
    ordered = sorted(found, key=lambda row: (row[2], row[0], row[1]), reverse=True)
    return [(name, version) for name, version, _ in ordered]
