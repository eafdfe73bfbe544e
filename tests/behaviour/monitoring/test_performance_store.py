"""Daily performance on every database: a backfill's days computed in one pass, a daily run's new
day computed alone and equal to what the whole history gives, nothing computed twice."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketsense.common.db.engine import Database
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring import performance_store
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.outcomes import resolve_outcomes
from marketsense.monitoring.performance_reads import daily_frame
from marketsense.monitoring.performance_store import update_performance
from marketsense.monitoring.performance_types import DAILY_COLUMNS
from tests.behaviour.monitoring.market_runs import (
    MODEL,
    SYMBOLS,
    VERSION,
    finished_run,
    monitoring_settings,
    sessions,
)
from tests.service_support import service_runtime

DAYS = sessions(dt.date(2026, 9, 1), dt.date(2026, 10, 5))
"""25 sessions: a backfill of all but the last, then a daily run of the last."""
MARKET = SimulatedMarket(seed=13)


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """A runtime on an empty database of each kind."""
    async with service_runtime(
        service="monitoring", database_url=database_url, store=store, home=tmp_path
    ) as runtime:
        yield runtime


@pytest.fixture
def settings(tmp_path: Path, database_url: str, store: ObjectStore) -> MonitoringSettings:
    """Monitoring's settings on the same database and store."""
    return monitoring_settings(tmp_path, database_url, store)


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_backfill_is_one_pass_and_a_new_day_matches_the_whole_history(
    runtime: Runtime, settings: MonitoringSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[pd.DataFrame] = []

    def counted(resolved: pd.DataFrame, **options: object) -> pd.DataFrame:
        passes.append(resolved)
        return daily_figures(resolved, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(performance_store, "daily_figures", counted)
    backfill = await finished_run(runtime, MARKET, start=DAYS[0], as_of=DAYS[-2])
    await resolve_outcomes(runtime, run_id=backfill)

    days = await update_performance(runtime, settings, model=MODEL, version=VERSION)

    assert days == DAYS[1:-1]
    assert len(passes) == 1
    assert await update_performance(runtime, settings, model=MODEL, version=VERSION) == []
    assert len(passes) == 1

    daily = await finished_run(runtime, MARKET, as_of=DAYS[-1])
    await resolve_outcomes(runtime, run_id=daily)
    assert await update_performance(runtime, settings, model=MODEL, version=VERSION) == [DAYS[-1]]
    # The new day's pass read its own and the day before's predictions, no more.
    assert sorted(set(passes[-1]["outcome_day"])) == DAYS[-2:]

    stored = await daily_frame(runtime, model=MODEL, version=VERSION)
    whole = counted(
        pd.concat([*passes[:1], passes[-1][passes[-1]["outcome_day"] == DAYS[-1]]]),
        quantile=settings.strategy_quantile,
        cost_bps=settings.strategy_cost_bps,
    )
    assert list(stored.index) == DAYS[1:]
    assert (stored["predictions"] == len(SYMBOLS)).all()
    np.testing.assert_allclose(
        stored[list(DAILY_COLUMNS)].to_numpy(dtype=float),
        whole[list(DAILY_COLUMNS)].to_numpy(dtype=float),
        rtol=1e-12,
        equal_nan=True,
    )


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_benchmark_symbol_is_judged_by_its_own_realised_returns(
    runtime: Runtime, settings: MonitoringSettings
) -> None:
    settings = settings.model_copy(update={"benchmark_symbol": SYMBOLS[3]})
    backfill = await finished_run(runtime, MARKET, start=DAYS[0], as_of=DAYS[-1])
    await resolve_outcomes(runtime, run_id=backfill)

    await update_performance(runtime, settings, model=MODEL, version=VERSION)

    stored = await daily_frame(runtime, model=MODEL, version=VERSION)
    bars = MARKET.daily_bars(SYMBOLS[3], as_of=DAYS[-1], days=len(DAYS))
    closes = pd.Series(bars["close"].to_numpy(), index=pd.to_datetime(bars["date"]).dt.date)
    expected = (closes / closes.shift(1) - 1).iloc[1:]
    assert list(stored.index) == list(expected.index) == DAYS[1:]
    np.testing.assert_allclose(stored["benchmark_return"], expected.to_numpy(), rtol=1e-12)
