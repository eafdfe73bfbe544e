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
    WARMUP_BARS,
    compute_feature_panel,
    compute_features,
    next_day_up,
    sentiment_aggregates,
)
from marketsense.ingestion.sources.simulated import SimulatedMarket

AS_OF = dt.date(2026, 11, 20)
MARKET = SimulatedMarket(seed=7)


def known_bars(close: np.ndarray, volume: np.ndarray | float = 1e6) -> pd.DataFrame:
    """Bars on business days with the given closes, opening at the previous close."""
    dates = pd.bdate_range(end="2026-11-20", periods=len(close)).date
    opening = np.concatenate(([close[0]], close[:-1]))
    prices = {"open": opening, "high": close, "low": close, "close": close}
    return pd.DataFrame({"date": dates, **prices, "volume": volume})


def test_features_match_a_direct_computation_on_known_prices() -> None:
    close = np.linspace(100, 100 + MIN_BARS + 59, MIN_BARS + 60)
    volume = 1e6 + 1e4 * np.sin(np.arange(len(close)))
    features = compute_features(known_bars(close, volume), dtype="float64")
    assert len(features) == 61
    last = features.iloc[-1]
    assert last["ret_1d"] == pytest.approx(close[-1] / close[-2] - 1, rel=1e-12)
    assert last["ret_5d"] == pytest.approx(close[-1] / close[-6] - 1, rel=1e-12)
    assert last["ret_20d"] == pytest.approx(close[-1] / close[-21] - 1, rel=1e-12)
    log_returns = np.diff(np.log(close))[-20:]
    assert last["volatility_20d"] == pytest.approx(np.std(log_returns, ddof=1) * np.sqrt(252))
    assert last["rsi_14"] == pytest.approx(100.0)  # prices only rose
    window = volume[-20:]
    z = (volume[-1] - window.mean()) / window.std(ddof=1)
    assert last["volume_z_20d"] == pytest.approx(z, rel=1e-9)
    assert last["gap_overnight"] == pytest.approx(0.0, abs=1e-15)  # opened at the last close
    ema12 = pd.Series(close).ewm(span=12, adjust=False).mean()
    ema26 = pd.Series(close).ewm(span=26, adjust=False).mean()
    macd = (ema12 - ema26) / close
    assert last["macd"] == pytest.approx(macd.iloc[-1], rel=1e-12)
    signal = macd.ewm(span=9, adjust=False).mean()
    assert last["macd_signal"] == pytest.approx(signal.iloc[-1], rel=1e-12)
    assert list(features.columns) == list(FEATURE_COLUMNS)


def test_rsi_follows_wilders_averages_of_gains_and_losses() -> None:
    bars = MARKET.daily_bars("X", as_of=AS_OF, days=MIN_BARS + 10)
    delta = bars["close"].diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False, ignore_na=True).mean()
    loss = (-delta).clip(lower=0).ewm(alpha=1 / 14, adjust=False, ignore_na=True).mean()
    expected = (100 - 100 / (1 + gain / loss)).iloc[WARMUP_BARS:].to_numpy()

    rsi = compute_features(bars, dtype="float64")["rsi_14"].to_numpy()

    np.testing.assert_allclose(rsi, expected, rtol=1e-12)


def test_flat_prices_have_no_rsi_rather_than_an_rsi_of_100() -> None:
    close = np.concatenate((np.linspace(50, 60, MIN_BARS), np.full(14, 60.0), [60.5]))
    features = compute_features(known_bars(close), dtype="float64")
    flat, moved_again = features["rsi_14"].iloc[-2], features["rsi_14"].iloc[-1]
    assert np.isnan(flat)
    assert moved_again == pytest.approx(100.0)  # the last move up follows only gains
    # One unchanged close is not flat: the period still saw moves.
    assert not np.isnan(features["rsi_14"].iloc[-15])


def test_a_volume_z_score_without_a_usable_spread_is_missing_not_zero() -> None:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.01, MIN_BARS)))
    varying = 5e5 * (1 + 0.1 * np.sin(np.arange(MIN_BARS)))
    no_trade = varying.copy()
    no_trade[-5] = 0.0

    def last_z(volume: np.ndarray) -> float:
        return float(compute_features(known_bars(close, volume))["volume_z_20d"].iloc[-1])

    assert np.isfinite(last_z(varying))
    assert np.isnan(last_z(np.full(MIN_BARS, 5e5)))  # constant: no spread to divide by
    assert np.isnan(last_z(no_trade))  # a day without volume in the window


def test_days_without_texts_have_explicit_missing_sentiment_not_neutral_zeros() -> None:
    bars = MARKET.daily_bars("X", as_of=AS_OF, days=MIN_BARS + 5)
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


def test_sentiment_aggregates_are_indexed_by_the_dates_asked_for() -> None:
    dates = pd.Index([AS_OF - dt.timedelta(days=1), AS_OF], name="date")
    scored = pd.DataFrame({"date": [AS_OF, AS_OF], "score": [0.5, 0.1]})

    daily = sentiment_aggregates(scored, dates)

    assert list(daily.columns) == list(SENTIMENT_COLUMNS)
    assert daily["sentiment_mean"].iloc[1] == pytest.approx(0.3)
    assert daily["sentiment_count"].tolist() == [0, 2]


def test_label_is_whether_the_next_close_is_higher_and_unknown_for_the_last_day() -> None:
    bars = pd.DataFrame({"date": [1, 2, 3, 4], "close": [10.0, 11.0, 10.5, 10.5]})
    labels = next_day_up(bars)
    assert labels.tolist()[:3] == [True, False, False]
    assert pd.isna(labels.iloc[3])


@pytest.mark.parametrize("bars_given", [0, 1, 30, MIN_BARS - 1, MIN_BARS, MIN_BARS + 1])
def test_the_first_feature_row_is_the_first_bar_after_the_warm_up(bars_given: int) -> None:
    bars = MARKET.daily_bars("X", as_of=AS_OF, days=MIN_BARS + 1).iloc[:bars_given]

    features = compute_features(bars)

    assert len(features) == max(0, bars_given - WARMUP_BARS)
    if len(features):
        assert features.index[0] == bars["date"].iloc[WARMUP_BARS]
        assert not features.iloc[0][["rsi_14", "macd_signal", "volatility_20d"]].isna().any()
    assert list(features.columns) == list(FEATURE_COLUMNS)
    assert set(features.dtypes) <= {np.dtype("float32")}


def test_bars_in_any_order_give_the_same_features() -> None:
    bars = MARKET.daily_bars("X", as_of=AS_OF, days=MIN_BARS + 20)
    shuffled = bars.sample(frac=1, random_state=3)

    pd.testing.assert_frame_equal(compute_features(shuffled), compute_features(bars))


def test_texts_of_days_without_a_bar_are_ignored_and_no_texts_is_no_sentiment() -> None:
    bars = MARKET.daily_bars("X", as_of=AS_OF, days=MIN_BARS + 5)
    weekend = AS_OF + dt.timedelta(days=1)  # a Saturday, after the last bar
    stray = pd.DataFrame({"date": [weekend, weekend], "score": [0.9, 0.8]})
    empty = pd.DataFrame({"date": [], "score": []})

    without = compute_features(bars)

    pd.testing.assert_frame_equal(compute_features(bars, stray), without)
    pd.testing.assert_frame_equal(compute_features(bars, empty), without)
    assert (without["has_sentiment"] == 0).all()


def test_the_strongest_of_equally_strong_scores_is_the_first() -> None:
    bars = MARKET.daily_bars("X", as_of=AS_OF, days=MIN_BARS + 5)
    day = bars["date"].iloc[-1]
    scored = pd.DataFrame({"date": [day, day, day], "score": [0.1, 0.6, -0.6]})

    last = compute_features(bars, scored).iloc[-1]

    assert last["sentiment_strongest"] == pytest.approx(0.6)
    assert last["sentiment_mean"] == pytest.approx(0.1 / 3)


def test_a_panel_gives_each_symbol_exactly_its_own_features() -> None:
    lengths = {"B": MIN_BARS + 40, "A": MIN_BARS + 3}
    bars = {s: MARKET.daily_bars(s, as_of=AS_OF, days=n) for s, n in lengths.items()}
    bars["C"] = bars["A"].iloc[: MIN_BARS - 1]  # too short for any row
    texts = {
        s: pd.DataFrame({"date": frame["date"].iloc[-3:], "score": [0.4, -0.7, 0.2]})
        for s, frame in bars.items()
    }
    long = pd.concat([f.assign(symbol=s) for s, f in bars.items()]).sample(frac=1, random_state=1)
    long_texts = pd.concat([f.assign(symbol=s) for s, f in texts.items()])

    for panel in (compute_feature_panel(bars, texts), compute_feature_panel(long, long_texts)):
        assert panel["symbol"].unique().tolist() in (["B", "A"], ["A", "B"])
        for symbol in ("A", "B"):
            rows = panel[panel["symbol"] == symbol].drop(columns="symbol").set_index("date")
            own = compute_features(bars[symbol], texts[symbol])
            pd.testing.assert_frame_equal(rows, own, check_names=False, check_index_type=False)


def test_a_missing_close_is_skipped_by_the_averages_and_leaves_its_own_day_missing() -> None:
    bars = MARKET.daily_bars("X", as_of=AS_OF, days=MIN_BARS + 5)
    holed = bars.copy()
    holed.loc[holed.index[-3], "close"] = np.nan

    features = compute_features(holed, dtype="float64")
    panel = compute_feature_panel({"X": holed, "Y": bars}, dtype="float64")

    assert np.isnan(features["ret_1d"].iloc[-3])
    assert np.isfinite(features["macd"].iloc[-1])
    assert np.isfinite(features["rsi_14"].iloc[-1])
    own = panel[panel["symbol"] == "X"].drop(columns=["symbol", "date"]).to_numpy()
    np.testing.assert_array_equal(own, features.to_numpy())


def test_the_label_follows_the_dates_not_the_row_order() -> None:
    bars = pd.DataFrame({"date": [3, 1, 2], "close": [12.0, 10.0, 11.0]})

    labels = next_day_up(bars)

    assert labels.index.tolist() == [1, 2, 3]
    assert labels.tolist()[:2] == [True, True]
    assert pd.isna(labels.iloc[2])
