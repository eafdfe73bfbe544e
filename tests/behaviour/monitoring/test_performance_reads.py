"""Reads of stored daily performance, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math
from types import SimpleNamespace
from typing import cast

from marketsense.common.db.engine import Database
from marketsense.common.db.models import PerformanceDay
from marketsense.common.runtime import Runtime
from marketsense.monitoring.performance_reads import daily_frame, monitored_versions
from marketsense.monitoring.performance_types import DAILY_COLUMNS

DAY = dt.date(2026, 11, 2)


def day_row(model: str, version: str, day: dt.date, *, ic: float | None = 0.1) -> PerformanceDay:
    """A daily row whose strategy return encodes its day, so order is visible."""
    return PerformanceDay(
        model_name=model,
        model_version=version,
        day=day,
        predictions=10,
        hits=6,
        book_positions=4,
        book_hits=3,
        ic=ic,
        rank_ic=ic,
        gross_return=0.001,
        turnover=0.5,
        strategy_return=day.day / 1000,
        benchmark_return=0.0005,
    )


async def test_a_versions_daily_frame_is_in_day_order_with_every_column(database: Database) -> None:
    days = [DAY + dt.timedelta(days=i) for i in (3, 0, 2, 1)]
    async with database.session() as session, session.begin():
        session.add_all([day_row("p", "1", day) for day in days])
        session.add(day_row("p", "1", DAY + dt.timedelta(days=4), ic=None))
        session.add(day_row("p", "2", DAY))
    runtime = cast(Runtime, SimpleNamespace(database=database))

    frame = await daily_frame(runtime, model="p", version="1")
    last_two = await daily_frame(runtime, model="p", version="1", last=2)

    assert list(frame.columns) == list(DAILY_COLUMNS)
    assert list(frame.index) == [DAY + dt.timedelta(days=i) for i in range(5)]
    assert list(frame["strategy_return"]) == [(DAY.day + i) / 1000 for i in range(5)]
    assert math.isnan(frame["ic"].iloc[-1])
    assert list(last_two.index) == [DAY + dt.timedelta(days=3), DAY + dt.timedelta(days=4)]
    assert (await daily_frame(runtime, model="p", version="9")).empty


async def test_versions_are_listed_most_recently_judged_first(database: Database) -> None:
    async with database.session() as session, session.begin():
        session.add(day_row("p", "1", DAY + dt.timedelta(days=5)))
        session.add(day_row("p", "2", DAY + dt.timedelta(days=9)))
        session.add(day_row("q", "7", DAY + dt.timedelta(days=1)))
    runtime = cast(Runtime, SimpleNamespace(database=database))

    assert await monitored_versions(runtime) == [("p", "2"), ("p", "1"), ("q", "7")]
    assert await monitored_versions(runtime, model="q") == [("q", "7")]
