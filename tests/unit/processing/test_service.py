"""The feature row processing stores for a run's day."""

from __future__ import annotations

import datetime as dt

import pytest

from marketsense.common.errors import NonRetryableError
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.processing.service import feature_row

AS_OF = dt.date(2026, 11, 20)


def test_feature_row_refuses_bars_that_do_not_reach_the_run_day() -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF - dt.timedelta(days=3), days=40)
    with pytest.raises(NonRetryableError, match="latest bar"):
        feature_row(bars, as_of=AS_OF, symbol="X")
    with pytest.raises(NonRetryableError, match="lack columns"):
        feature_row(bars.drop(columns=["volume"]), as_of=AS_OF, symbol="X")
    with pytest.raises(NonRetryableError, match="features need"):
        feature_row(bars.tail(5), as_of=AS_OF, symbol="X")
