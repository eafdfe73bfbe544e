"""The feature row processing stores for a run's day, and where it stores it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from marketsense.common.errors import NonRetryableError
from marketsense.common.features import FEATURE_COLUMNS, MIN_BARS, compute_features
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.processing.service import feature_row, features_key

AS_OF = dt.date(2026, 11, 20)


def test_feature_row_refuses_bars_that_do_not_reach_the_run_day() -> None:
    bars = SimulatedMarket(seed=7).daily_bars(
        "X", as_of=AS_OF - dt.timedelta(days=3), days=MIN_BARS + 5
    )
    with pytest.raises(NonRetryableError, match="latest bar"):
        feature_row(bars, as_of=AS_OF, symbol="X")
    with pytest.raises(NonRetryableError, match="lack columns"):
        feature_row(bars.drop(columns=["volume"]), as_of=AS_OF, symbol="X")
    with pytest.raises(NonRetryableError, match="features need"):
        feature_row(bars.tail(5), as_of=AS_OF, symbol="X")


def test_features_keys_are_deterministic_per_day_run_and_symbol() -> None:
    key = features_key(as_of=AS_OF, run_id="r1", symbol="AAA")

    assert key == "features/2026-11-20/r1/AAA.parquet"
    assert features_key(as_of=AS_OF, run_id="r2", symbol="AAA") != key


def test_the_feature_row_is_the_run_days_features_named_by_symbol_and_date() -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF, days=MIN_BARS)

    row = feature_row(bars, as_of=AS_OF, symbol="X")

    assert len(row) == 1
    assert list(row.columns[:2]) == ["symbol", "date"]
    assert set(FEATURE_COLUMNS) <= set(row.columns)
    assert (row["symbol"].iloc[0], row["date"].iloc[0]) == ("X", AS_OF)
    expected = compute_features(bars)[list(FEATURE_COLUMNS)].tail(1).to_numpy()
    np.testing.assert_array_equal(row[list(FEATURE_COLUMNS)].to_numpy(), expected)
