"""Outcomes on every database and object store: a backfill, then a daily run, resolve each
prediction exactly when its next session's bar is stored, with the simulated closes' return, and
resolving again stores nothing."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import Outcome, Prediction, RawObject
from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.outcomes import resolve_outcomes
from tests.behaviour.monitoring.market_runs import SYMBOLS, finished_run, sessions
from tests.service_support import service_runtime

DAYS = sessions(dt.date(2026, 9, 1), dt.date(2026, 10, 27))
"""40 sessions: a backfill of all but the last, then a daily run of the last."""
MARKET = SimulatedMarket(seed=11)


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """A runtime on an empty database and object store of each kind."""
    async with service_runtime(
        service="monitoring", database_url=database_url, store=store, home=tmp_path
    ) as runtime:
        yield runtime


async def outcomes(runtime: Runtime) -> dict[tuple[str, dt.date], Outcome]:
    """Stored outcomes by (symbol, prediction day)."""
    async with runtime.database.session() as session:
        return {(o.symbol, o.as_of): o for o in await session.scalars(select(Outcome))}


async def test_a_backfill_then_a_daily_run_resolve_each_prediction_once_its_next_bar_is_stored(
    runtime: Runtime,
) -> None:
    assert len(DAYS) == 40
    backfill = await finished_run(runtime, MARKET, start=DAYS[0], as_of=DAYS[-2])

    stored = await resolve_outcomes(runtime, run_id=backfill)

    # The backfill's last day waits for the next session's bar.
    assert stored == len(SYMBOLS) * (len(DAYS) - 2)
    assert {day for _, day in await outcomes(runtime)} == set(DAYS[:-2])

    daily = await finished_run(runtime, MARKET, as_of=DAYS[-1])
    assert await resolve_outcomes(runtime, run_id=daily) == len(SYMBOLS)
    assert await resolve_outcomes(runtime, run_id=daily) == 0
    assert await resolve_outcomes(runtime, run_id=backfill) == 0

    found = await outcomes(runtime)
    assert set(found) == {(symbol, day) for symbol in SYMBOLS for day in DAYS[:-1]}
    for symbol in SYMBOLS:
        bars = MARKET.daily_bars(symbol, as_of=DAYS[-1], days=len(DAYS))
        closes = dict(zip(pd.to_datetime(bars["date"]).dt.date, bars["close"], strict=True))
        for today, after in itertools.pairwise(DAYS):
            outcome = found[(symbol, today)]
            expected = closes[after] / closes[today] - 1
            assert outcome.outcome_day == after
            assert outcome.realized_return == pytest.approx(expected, rel=1e-12)
            assert outcome.direction == ("up" if expected > 0 else "down")
            assert outcome.resolved_by_run == (daily if after == DAYS[-1] else backfill)
            assert outcome.run_id == backfill


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_prediction_for_a_day_without_a_bar_is_left_unresolved(runtime: Runtime) -> None:
    run_id = await finished_run(runtime, MARKET, start=DAYS[0], as_of=DAYS[5], symbols=SYMBOLS[:1])
    async with runtime.transaction() as session:
        weekend = Prediction(
            run_id=run_id, symbol=SYMBOLS[0], as_of=dt.date(2026, 9, 5), horizon_days=1,
            prob_up=0.6, signal="buy", model_name="baseline-predictor", model_version="v-other",
        )  # fmt: skip
        session.add(weekend)

    assert await resolve_outcomes(runtime, run_id=run_id) == 5
    assert (SYMBOLS[0], dt.date(2026, 9, 5)) not in await outcomes(runtime)


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_zero_or_missing_close_and_a_bar_after_the_run_day_resolve_nothing(
    runtime: Runtime,
) -> None:
    symbol = SYMBOLS[0]
    run_id = await finished_run(runtime, MARKET, start=DAYS[0], as_of=DAYS[5], symbols=[symbol])
    async with runtime.transaction() as session:
        stored = await session.scalar(
            select(RawObject).where(RawObject.run_id == run_id, RawObject.kind == "bars")
        )
        assert stored is not None
        bars = from_parquet_bytes(await runtime.store.get(stored.ref()))
        days = list(pd.to_datetime(bars["date"]).dt.date)
        bars.loc[days.index(DAYS[1]), "close"] = 0.0
        bars.loc[days.index(DAYS[3]), "close"] = float("nan")
        # A day the run could not have known: a file holding it must not judge DAYS[5].
        later = MARKET.daily_bars(symbol, as_of=DAYS[6], days=1)
        edited = pd.concat([bars, later.astype(bars.dtypes.to_dict())], ignore_index=True)
        stored.point_at(await runtime.store.put("edited/bars.parquet", to_parquet_bytes(edited)))

    # DAYS[0] to DAYS[3] touch a bad close, DAYS[5]'s next session is after the run's day.
    assert await resolve_outcomes(runtime, run_id=run_id) == 1
    assert set(await outcomes(runtime)) == {(symbol, DAYS[4])}


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_run_that_is_not_stored_resolves_nothing(runtime: Runtime) -> None:
    assert await resolve_outcomes(runtime, run_id="no-such-run") == 0
