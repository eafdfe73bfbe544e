"""A run's stored bars as closes by day: only days the run could know, each once, gaps kept."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.stored_bars import closes_of

AS_OF = dt.date(2026, 10, 27)


def bars() -> pd.DataFrame:
    """Ten simulated sessions of one symbol, as ingestion stores them."""
    return SimulatedMarket(seed=3).daily_bars("ACME", as_of=AS_OF, days=10)


def test_closes_are_by_day_ascending_and_end_at_the_run_day() -> None:
    stored = bars()
    until = pd.to_datetime(stored["date"]).dt.date.iloc[6]

    closes = closes_of(stored.iloc[::-1], until=until)

    assert list(closes.index) == list(pd.to_datetime(stored["date"]).dt.date.iloc[:7])
    assert closes.to_numpy().tolist() == stored["close"].iloc[:7].tolist()


def test_a_day_stored_twice_keeps_its_last_row_and_a_missing_close_stays_in_place() -> None:
    stored = bars()
    again = stored.iloc[[3]].assign(close=123.0)
    stored.loc[5, "close"] = np.nan

    closes = closes_of(pd.concat([stored, again], ignore_index=True), until=AS_OF)

    assert len(closes) == 10
    assert closes.iloc[3] == 123.0
    assert np.isnan(closes.iloc[5])


def test_no_bars_are_no_closes() -> None:
    assert closes_of(bars().iloc[:0], until=AS_OF).empty
