"""The real-data sample under tests/data/real is what scripts/write_real_sample.py writes: real
sessions of the New York Stock Exchange, clean prices, enough history, the real moves of 2008."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from scripts.write_real_sample import (
    END,
    OFFSET_SYMBOL,
    SAMPLE,
    START,
    SYMBOLS,
    bars_frame,
    texts_frame,
)

from marketsense.common.calendar import exchange_calendar
from marketsense.common.features import MIN_BARS
from marketsense.orchestrator.config import OrchestratorSettings

EARLIEST_RUN_DAY = dt.date(2008, 3, 10)
"""The earliest day the end-to-end test on the sample runs for."""


def sample_bars(symbol: str) -> pd.DataFrame:
    """A symbol's bars as committed, with `day` the New York session each row is for."""
    bars = pd.read_csv(SAMPLE / "bars" / f"{symbol}.csv", dtype={"date": "str"})
    stamps = pd.to_datetime(bars["date"], utc=True, format="ISO8601")
    if symbol == OFFSET_SYMBOL:
        stamps = stamps.dt.tz_convert("America/New_York")
    bars["day"] = stamps.dt.date
    return bars


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_bars_are_every_exchange_session_of_the_window_and_nothing_else(symbol: str) -> None:
    days = sample_bars(symbol)["day"].tolist()

    sessions = exchange_calendar("XNYS").sessions(START, END)
    assert days == sessions
    assert dt.date(2008, 11, 27) not in days  # Thanksgiving
    assert dt.date(2007, 1, 2) not in days  # closed in mourning for President Ford


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_prices_are_positive_bracketed_by_high_and_low_and_nothing_is_missing(
    symbol: str,
) -> None:
    bars = sample_bars(symbol)

    assert not bars.isna().any().any()
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["volume"] > 0).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()


def test_the_offset_symbol_writes_its_close_with_the_offset_of_the_day() -> None:
    dates = pd.read_csv(SAMPLE / "bars" / f"{OFFSET_SYMBOL}.csv", dtype={"date": "str"})["date"]

    assert "2008-03-07T16:00:00-05:00" in set(dates)
    assert "2008-03-10T16:00:00-04:00" in set(dates)
    assert {d[-6:] for d in dates} == {"-05:00", "-04:00"}


def test_history_up_to_the_earliest_run_day_covers_a_daily_run_and_the_features_warm_up() -> None:
    lookback = OrchestratorSettings.model_fields["lookback_days"].default
    days = sample_bars("GSPC")["day"]

    assert (days <= EARLIEST_RUN_DAY).sum() >= max(lookback, MIN_BARS) + 100  # with room to grow


def test_returns_are_the_real_ones_of_2008_not_generated() -> None:
    closes = sample_bars("GSPC").set_index("day")["close"]
    returns = closes.pct_change()

    assert returns[dt.date(2008, 10, 13)] == pytest.approx(0.1158, abs=5e-4)
    assert returns[dt.date(2008, 9, 29)] == pytest.approx(-0.0879, abs=5e-4)
    assert returns[dt.date(2008, 12, 1)] == pytest.approx(-0.0893, abs=5e-4)
    assert closes[dt.date(2008, 11, 20)] == pytest.approx(752.44, abs=0.01)
    in_2008 = returns[[day.year == 2008 for day in returns.index]]
    assert (in_2008.abs() > 0.05).sum() >= 15  # the autumn of 2008 had many


def test_a_symbol_rewritten_from_its_own_sample_gives_the_same_bars() -> None:
    """The committed bars are fixed points of the script's formatting: reading them back as the
    package's frame and writing them again changes nothing."""
    for symbol in SYMBOLS:
        committed = pd.read_csv(SAMPLE / "bars" / f"{symbol}.csv", dtype={"date": "str"})
        packaged = pd.DataFrame(
            {
                column.title(): committed[column].to_numpy()
                for column in ("open", "high", "low", "close", "volume")
            },
            index=pd.DatetimeIndex(sample_bars(symbol)["day"]),
        )
        rewritten = bars_frame(packaged, with_offsets=symbol == OFFSET_SYMBOL)
        pd.testing.assert_frame_equal(rewritten, committed, check_dtype=False)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_texts_are_the_headlines_the_script_writes(symbol: str) -> None:
    committed = pd.read_csv(SAMPLE / "texts" / f"{symbol}.csv", dtype="str")

    pd.testing.assert_frame_equal(committed, texts_frame(symbol))
    published = pd.to_datetime(committed["published_at"], format="ISO8601")
    assert str(published.dt.tz) == "UTC"
    assert committed["id"].is_unique
