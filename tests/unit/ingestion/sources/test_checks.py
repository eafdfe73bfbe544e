"""Checks of real-looking bars: each way real data goes wrong gives a note that says what and
when, and clean data gives none."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketsense.common.calendar import exchange_calendar
from marketsense.ingestion.sources.base import SourceRejected
from marketsense.ingestion.sources.checks import SPLIT_FELT_SESSIONS, BarChecks, CheckLimits
from marketsense.ingestion.sources.simulated import SimulatedMarket

AS_OF = dt.date(2024, 6, 28)  # a Friday
XNYS = exchange_calendar("XNYS")


def stock(*, sessions: int = 120, seed: int = 3, as_of: dt.date = AS_OF) -> pd.DataFrame:
    """Daily bars of a stock near 180 with 1.6% daily moves (fat-tailed, Student's t with 5
    degrees of freedom) and a volume near 50 million, on the last XNYS sessions to `as_of`."""
    rng = np.random.default_rng(seed)
    days = XNYS.sessions(as_of - dt.timedelta(days=sessions * 2), as_of)[-sessions:]
    moves = rng.standard_t(5, sessions) * 0.016 / np.sqrt(5 / 3)
    close = 180 * np.exp(np.cumsum(moves))
    opened = close * np.exp(rng.normal(0, 0.004, sessions))
    top = np.maximum(opened, close) * np.exp(np.abs(rng.normal(0, 0.006, sessions)))
    bottom = np.minimum(opened, close) * np.exp(-np.abs(rng.normal(0, 0.006, sessions)))
    return pd.DataFrame(
        {
            "date": days,
            "open": opened.round(2),
            "high": top.round(2),
            "low": bottom.round(2),
            "close": close.round(2),
            "volume": rng.lognormal(np.log(5e7), 0.3, sessions).round(),
        }
    )


def notes(bars: pd.DataFrame, *, as_of: dt.date = AS_OF, **limits: float) -> list[str]:
    """What the checks say about AAPL's bars for a run of `as_of`."""
    checks = BarChecks(calendar=XNYS, limits=CheckLimits(**limits))  # type: ignore[arg-type]
    return checks(bars, symbol="AAPL", as_of=as_of)


def test_clean_real_looking_bars_give_no_note() -> None:
    for seed in range(20):
        assert notes(stock(seed=seed)) == [], seed


def test_the_simulated_market_gives_no_note() -> None:
    market = SimulatedMarket(seed=7)
    for symbol in (f"S{i:02d}" for i in range(30)):
        bars = market.daily_bars(symbol, as_of=dt.date(2026, 11, 20), days=250)
        assert BarChecks()(bars, symbol=symbol, as_of=dt.date(2026, 11, 20)) == [], symbol


def split(bars: pd.DataFrame, *, on: int, ratio: float) -> pd.DataFrame:
    """Bars not adjusted for a split: prices from row `on` on multiplied by `ratio`."""
    out = bars.copy()
    out.loc[on:, ["open", "high", "low", "close"]] *= ratio
    return out


def test_an_unadjusted_split_ten_days_before_the_run_is_noted_with_its_ratio_and_day() -> None:
    bars = split(stock(), on=110, ratio=0.1)  # ten sessions before the last

    found = notes(bars)

    day = bars["date"].iloc[110].isoformat()
    assert len(found) == 1
    ratio = bars["close"].iloc[110] / bars["close"].iloc[109]  # the split and the day's own move
    assert found[0].startswith(f"AAPL: {day}: close moved x{ratio:.3f} (a 10-for-1 split?), ")
    deviations = int(found[0].split(", ")[1].split()[0])
    assert deviations > 100
    assert "prices are not split-adjusted" in found[0]


@pytest.mark.parametrize(
    ("ratio", "guess"),
    [
        (0.5, "(a 2-for-1 split?)"),
        (2 / 3, "(a 3-for-2 split?)"),
        (10.0, "(a 1-for-10 reverse split?)"),
        (1.25, ""),
    ],
)
def test_a_jump_names_the_split_it_looks_like_or_none(ratio: float, guess: str) -> None:
    bars = split(stock(), on=60, ratio=ratio)

    (found,) = notes(bars)

    assert f"close moved x{bars['close'].iloc[60] / bars['close'].iloc[59]:.3f}" in found
    assert (guess in found) if guess else ("split?" not in found)


def refusal(bars: pd.DataFrame, *, fail_on_split: bool = True, **limits: float) -> str | None:
    """Why AAPL's bars are refused for the run of their last day, or None if they are not."""
    checks = BarChecks(
        calendar=XNYS,
        limits=CheckLimits(**limits),  # type: ignore[arg-type]
        fail_on_split=fail_on_split,
    )
    try:
        checks.refuse_unadjusted_split(bars, symbol="AAPL")
    except SourceRejected as exc:
        return str(exc)
    return None


def test_an_unadjusted_split_the_features_would_feel_fails_the_symbol_saying_what_to_fix() -> None:
    bars = split(stock(), on=110, ratio=0.1)  # ten sessions before the last

    refused = refusal(bars)

    day = bars["date"].iloc[110].isoformat()
    ratio = bars["close"].iloc[110] / bars["close"].iloc[109]
    assert refused == (
        f"AAPL: prices look unadjusted for a 10-for-1 split on {day} (close x{ratio:.3f}), "
        "9 sessions before the run's day: its returns, volatility, RSI and MACD would be wrong; "
        "supply split-adjusted prices (or set check_fail_on_split to false to score them anyway)"
    )


def test_a_volatile_stock_s_wild_day_near_a_split_ratio_is_noted_not_refused() -> None:
    # A stock moving 8% a day (its noise widens the note's guess) jumps 40% in a day: near a
    # 2-for-3 reverse split's 1.5, but no split.
    bars = stock()
    rng = np.random.default_rng(5)
    wild = np.exp(np.cumsum(rng.normal(0, 0.08, len(bars))))
    bars[["open", "high", "low", "close"]] = bars[["open", "high", "low", "close"]].mul(
        wild, axis=0
    )
    bars = split(bars, on=110, ratio=1.40 * bars["close"].iloc[109] / bars["close"].iloc[110])

    assert refusal(bars, jump_deviations=4) is None
    assert any("(a 2-for-3 reverse split?)" in note for note in notes(bars, jump_deviations=4))


def test_a_reverse_split_fails_the_symbol_too() -> None:
    refused = refusal(split(stock(), on=60, ratio=10.0))

    assert refused is not None
    assert "a 1-for-10 reverse split" in refused


def test_a_split_is_only_noted_when_failing_on_splits_is_turned_off() -> None:
    bars = split(stock(), on=110, ratio=0.1)

    assert refusal(bars, fail_on_split=False) is None
    assert "(a 10-for-1 split?)" in notes(bars)[0]


def test_a_jump_that_is_no_split_is_only_noted() -> None:
    bars = split(stock(), on=110, ratio=1.25)  # an earnings day

    assert refusal(bars) is None
    (found,) = notes(bars)
    assert "split?" not in found


def test_a_split_older_than_the_features_feel_is_only_noted_as_history_left_unadjusted() -> None:
    sessions = SPLIT_FELT_SESSIONS + 40
    oldest_felt = sessions - SPLIT_FELT_SESSIONS
    bars = stock(sessions=sessions)
    older, felt = split(bars, on=oldest_felt - 1, ratio=0.5), split(bars, on=oldest_felt, ratio=0.5)

    assert refusal(older) is None
    (found,) = notes(older)
    assert "(a 2-for-1 split?)" in found
    assert "the run's features no longer feel it" in found
    assert "history stays unadjusted" in found
    assert refusal(felt) is not None
    assert "no longer feel it" not in notes(felt)[0]


def test_the_jump_threshold_is_a_setting() -> None:
    bars = split(stock(), on=60, ratio=1.12)  # an earnings day: about 7 robust deviations

    assert notes(bars) == []
    assert len(notes(bars, jump_deviations=5)) == 1


def test_a_four_week_gap_is_noted_with_its_sessions_and_dates() -> None:
    bars = stock()
    dropped = bars.iloc[60:80]
    bars = bars.drop(dropped.index).reset_index(drop=True)

    (found,) = notes(bars)

    first, last = dropped["date"].iloc[0].isoformat(), dropped["date"].iloc[-1].isoformat()
    assert found.startswith("AAPL: 20 sessions from ")
    assert f"the longest gap is 20 sessions, {first} to {last}" in found
    assert "a one-day return across a gap spans several sessions" in found


def test_single_missing_sessions_are_counted_with_the_longest() -> None:
    bars = stock().drop([10, 30, 31]).reset_index(drop=True)

    (found,) = notes(bars)

    assert "3 sessions from" in found
    assert "the longest gap is 2 sessions" in found


def test_prices_that_stopped_moving_at_the_end_are_noted() -> None:
    bars = stock()
    last = bars["close"].iloc[113]
    bars.loc[114:, ["open", "high", "low", "close"]] = last  # six filled bars after a real one

    (found,) = notes(bars)

    start = bars["date"].iloc[113].isoformat()
    assert found.startswith(f"AAPL: prices have not moved over the last 7 bars ({start} to ")
    assert notes(bars, flat_sessions=8) == []


def test_repeated_bars_at_the_end_count_as_flat() -> None:
    bars = stock()
    bars.loc[115:, ["open", "high", "low", "close"]] = bars.loc[
        114, ["open", "high", "low", "close"]
    ].to_numpy()

    (found,) = notes(bars)

    assert "prices have not moved over the last 6 bars" in found


def test_a_window_of_flat_prices_is_noted_once() -> None:
    bars = stock()
    bars[["open", "high", "low", "close"]] = 42.0

    (found,) = notes(bars)

    assert found.startswith("AAPL: prices are flat over all 120 bars (")
    assert "close 42" in found


def test_zero_volume_on_some_recent_sessions_is_noted() -> None:
    bars = stock()
    bars.loc[bars.index[-20::2], "volume"] = 0.0
    bars.loc[bars.index[-5], "volume"] = 0.0

    assert notes(bars) == [
        "AAPL: volume is 0 on 11 of the last 20 bars; volume features are unreliable"
    ]


@pytest.mark.parametrize(("value", "said"), [(0.0, "0"), (1_000_000.0, "the same (1,000,000)")])
def test_constant_volume_is_noted(value: float, said: str) -> None:
    bars = stock()
    bars.loc[bars.index[-25:], "volume"] = value

    assert notes(bars) == [
        f"AAPL: volume is {said} on each of the last 20 bars; volume features are missing"
    ]


def test_old_zero_volume_is_not_noted() -> None:
    bars = stock()
    bars.loc[:50, "volume"] = 0.0

    assert notes(bars) == []


def test_a_last_bar_older_than_the_run_says_how_stale() -> None:
    bars = stock(as_of=dt.date(2024, 6, 20))

    (found,) = notes(bars, as_of=AS_OF)

    # Juneteenth (2024-06-19) is a holiday; the 21st, 24th to 28th are sessions.
    assert found == (
        "AAPL: the last bar is 2024-06-20: no bar for the 6 sessions from 2024-06-21 to "
        "2024-06-28 (the data is stale)"
    )


def test_a_run_on_the_day_after_the_last_bar_names_that_day() -> None:
    bars = stock(as_of=dt.date(2024, 6, 27))

    assert notes(bars, as_of=AS_OF) == [
        "AAPL: the last bar is 2024-06-27: no bar for 2024-06-28 (the data is stale)"
    ]


def test_a_run_on_a_holiday_after_the_last_session_is_not_stale() -> None:
    bars = stock(as_of=dt.date(2024, 7, 3))

    assert notes(bars, as_of=dt.date(2024, 7, 4)) == []


def test_no_bars_give_no_note() -> None:
    assert notes(stock().iloc[:0]) == []


def test_days_the_calendar_does_not_cover_are_said_not_checked() -> None:
    bars = stock(sessions=30, as_of=dt.date(2024, 6, 28))

    found = notes(bars, as_of=dt.date(2150, 1, 2))

    assert found == [
        "AAPL: gaps and staleness not checked: 2150-01-02 is outside the XNYS calendar "
        "(1970-01-02 to 2099-12-31)"
    ]
