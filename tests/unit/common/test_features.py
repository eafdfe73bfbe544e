"""Features of a symbol-day from its bars and scored texts, and the next-day label."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketsense.common.features import (
    FEATURE_COLUMNS,
    MIN_BARS,
    SENTIMENT_COLUMNS,
    compute_features,
    next_day_up,
)
from marketsense.ingestion.sources.simulated import SimulatedMarket

AS_OF = dt.date(2026, 11, 20)


def test_features_match_a_direct_computation_on_known_prices() -> None:
    dates = pd.bdate_range("2026-01-01", periods=60).date
    close = np.linspace(100, 159, 60)
    bars = pd.DataFrame(
        {"date": dates, "open": close, "high": close, "low": close, "close": close, "volume": 1e6}
    )
    features = compute_features(bars)
    assert len(features) == 60 - MIN_BARS + 1
    last = features.iloc[-1]
    assert last["ret_1d"] == pytest.approx(159 / 158 - 1, rel=1e-5)
    assert last["ret_5d"] == pytest.approx(159 / 154 - 1, rel=1e-5)
    assert last["ret_20d"] == pytest.approx(159 / 139 - 1, rel=1e-5)
    assert last["rsi_14"] == pytest.approx(100.0)  # prices only rose
    assert last["volume_z_20d"] == 0.0  # constant volume has no spread
    assert last["gap_overnight"] == pytest.approx(159 / 158 - 1, rel=1e-5)  # open vs last close
    ema12 = pd.Series(close).ewm(span=12, adjust=False).mean().iloc[-1]
    ema26 = pd.Series(close).ewm(span=26, adjust=False).mean().iloc[-1]
    assert last["macd"] == pytest.approx((ema12 - ema26) / 159, rel=1e-4)
    assert list(features.columns) == list(FEATURE_COLUMNS)


def test_days_without_texts_have_explicit_missing_sentiment_not_neutral_zeros() -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF, days=40)
    day, other = bars["date"].iloc[-1], bars["date"].iloc[-2]
    scored = pd.DataFrame({"date": [day, day, day, other], "score": [0.8, -0.9, 0.1, 0.3]})
    features = compute_features(bars, scored)
    today, yesterday, before = features.iloc[-1], features.iloc[-2], features.iloc[-3]
    assert today["sentiment_count"] == 3
    assert today["sentiment_mean"] == pytest.approx(0.0, abs=1e-6)
    assert today["sentiment_pos_share"] == pytest.approx(1 / 3)
    assert today["sentiment_neg_share"] == pytest.approx(1 / 3)
    assert today["sentiment_strongest"] == pytest.approx(-0.9)  # signed, largest magnitude
    assert today["has_sentiment"] == 1
    assert yesterday["sentiment_mean"] == pytest.approx(0.3)
    assert before["sentiment_count"] == 0
    assert before["has_sentiment"] == 0
    for column in SENTIMENT_COLUMNS[:1] + SENTIMENT_COLUMNS[2:5]:
        assert np.isnan(before[column]), column


def test_label_is_whether_the_next_close_is_higher_and_unknown_for_the_last_day() -> None:
    bars = pd.DataFrame({"date": [1, 2, 3, 4], "close": [10.0, 11.0, 10.5, 10.5]})
    labels = next_day_up(bars)
    assert labels.tolist()[:3] == [True, False, False]
    assert pd.isna(labels.iloc[3])


@pytest.mark.parametrize("bars_given", [0, 1, MIN_BARS - 1, MIN_BARS, MIN_BARS + 1])
def test_a_feature_row_needs_min_bars_of_history(bars_given: int) -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF, days=60).iloc[:bars_given]

    features = compute_features(bars)

    assert len(features) == max(0, bars_given - MIN_BARS + 1)
    assert list(features.columns) == list(FEATURE_COLUMNS)
    assert set(features.dtypes) == {np.dtype("float32")}


def test_bars_in_any_order_give_the_same_features() -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF, days=60)
    shuffled = bars.sample(frac=1, random_state=3)

    pd.testing.assert_frame_equal(compute_features(shuffled), compute_features(bars))


def test_texts_of_days_without_a_bar_are_ignored_and_no_texts_is_no_sentiment() -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF, days=40)
    weekend = AS_OF + dt.timedelta(days=1)  # a Saturday, after the last bar
    stray = pd.DataFrame({"date": [weekend, weekend], "score": [0.9, 0.8]})
    empty = pd.DataFrame({"date": [], "score": []})

    without = compute_features(bars)

    pd.testing.assert_frame_equal(compute_features(bars, stray), without)
    pd.testing.assert_frame_equal(compute_features(bars, empty), without)
    assert (without["has_sentiment"] == 0).all()


def test_the_strongest_of_equally_strong_scores_is_the_first() -> None:
    bars = SimulatedMarket(seed=7).daily_bars("X", as_of=AS_OF, days=40)
    day = bars["date"].iloc[-1]
    scored = pd.DataFrame({"date": [day, day, day], "score": [0.1, 0.6, -0.6]})

    last = compute_features(bars, scored).iloc[-1]

    assert last["sentiment_strongest"] == pytest.approx(0.6)
    assert last["sentiment_mean"] == pytest.approx(0.1 / 3)


def test_the_label_follows_the_dates_not_the_row_order() -> None:
    bars = pd.DataFrame({"date": [3, 1, 2], "close": [12.0, 10.0, 11.0]})

    labels = next_day_up(bars)

    assert labels.index.tolist() == [1, 2, 3]
    assert labels.tolist()[:2] == [True, True]
    assert pd.isna(labels.iloc[2])
