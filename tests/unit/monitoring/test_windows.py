"""Window figures pool the last days' counts, average the defined daily ICs and take the return
figures of the window's strategy and benchmark returns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketsense.monitoring.performance_types import DAILY_COLUMNS
from marketsense.monitoring.returns_stats import return_stats
from marketsense.monitoring.windows import window_figures

DAYS = [d.date() for d in pd.bdate_range("2026-09-01", periods=30)]


def daily(days: int = 30, seed: int = 1) -> pd.DataFrame:
    """A daily frame as stored: counts, ICs with gaps, and return series."""
    rng = np.random.default_rng(seed)
    predictions = rng.integers(20, 60, days)
    positions = 2 * (predictions // 5)
    ic = rng.normal(0.05, 0.1, days)
    ic[::4] = np.nan  # days the coefficient was undefined
    frame = pd.DataFrame(
        {
            "predictions": predictions,
            "hits": rng.binomial(predictions, 0.53),
            "book_positions": positions,
            "book_hits": rng.binomial(positions, 0.55),
            "ic": ic,
            "rank_ic": ic * 0.9,
            "gross_return": rng.normal(0.001, 0.005, days),
            "turnover": rng.uniform(0.5, 1.8, days),
            "strategy_return": rng.normal(0.0008, 0.005, days),
            "benchmark_return": rng.normal(0.0003, 0.01, days),
        },
        index=pd.Index(DAYS[:days], name="day"),
    )
    return frame[list(DAILY_COLUMNS)]


def test_the_window_takes_the_last_rows_and_pools_their_counts() -> None:
    frame = daily()
    last = frame.tail(21)

    figures = window_figures(frame, 21)

    assert figures is not None
    assert (figures.window, figures.days) == (21, 21)
    assert (figures.first_day, figures.last_day) == (DAYS[9], DAYS[29])
    assert figures.predictions == last["predictions"].sum()
    assert figures.accuracy == pytest.approx(last["hits"].sum() / last["predictions"].sum())
    assert figures.hit_rate == pytest.approx(last["book_hits"].sum() / last["book_positions"].sum())
    assert figures.ic == pytest.approx(np.nanmean(last["ic"]))
    assert figures.rank_ic == pytest.approx(np.nanmean(last["rank_ic"]))
    assert figures.strategy == return_stats(last["strategy_return"].to_numpy())
    assert figures.benchmark == return_stats(last["benchmark_return"].to_numpy())


def test_a_window_longer_than_the_history_holds_what_there_is() -> None:
    figures = window_figures(daily(days=12), 252)

    assert figures is not None
    assert (figures.window, figures.days, figures.first_day) == (252, 12, DAYS[0])


def test_the_rows_are_taken_in_day_order_whatever_order_they_came_in() -> None:
    frame = daily()

    assert window_figures(frame.iloc[::-1], 5) == window_figures(frame, 5)


def test_an_empty_history_has_no_window() -> None:
    assert window_figures(daily().iloc[:0], 21) is None


def test_undefined_figures_are_none() -> None:
    frame = daily(days=1).assign(predictions=0, hits=0, book_positions=0, book_hits=0, ic=np.nan)
    frame["rank_ic"] = np.nan

    figures = window_figures(frame, 21)

    assert figures is not None
    assert figures.accuracy is None
    assert figures.hit_rate is None
    assert figures.ic is None
    assert figures.rank_ic is None
    assert figures.strategy.sharpe is None


def test_timestamps_in_the_index_are_read_as_days() -> None:
    frame = daily()
    frame.index = pd.to_datetime(frame.index)

    figures = window_figures(frame, 3)

    assert figures is not None
    assert figures.last_day == DAYS[29]
    assert isinstance(figures.last_day, dt.date)


def test_a_window_below_one_day_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        window_figures(daily(), 0)
