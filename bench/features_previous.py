"""The feature function as it was before the warm-up (schema technical-sentiment-v1).

Kept verbatim as the baseline of the daily case in `bench/features.py`: it computed a daily
run's row from a 60-bar window, with per-bar Python loops for the exponential averages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURE_SCHEMA = "technical-sentiment-v1"
"""Name of the feature schema this module computes."""

TECHNICAL_COLUMNS: tuple[str, ...] = (
    "ret_1d",
    "ret_5d",
    "ret_20d",
    "volatility_20d",
    "rsi_14",
    "macd",
    "macd_signal",
    "volume_z_20d",
    "gap_overnight",
)
"""Columns computed from bars alone."""

SENTIMENT_COLUMNS: tuple[str, ...] = (
    "sentiment_mean",
    "sentiment_count",
    "sentiment_pos_share",
    "sentiment_neg_share",
    "sentiment_strongest",
    "has_sentiment",
)
"""Aggregates of the day's scored texts. A day without texts has count 0, has_sentiment 0 and
NaN for the rest: missing, not a neutral 0 that a model would mistake for calm news."""

FEATURE_COLUMNS: tuple[str, ...] = TECHNICAL_COLUMNS + SENTIMENT_COLUMNS
"""Columns of a feature row, in the order models receive them."""

BAR_COLUMNS = ("date", "open", "high", "low", "close", "volume")
"""Columns of a daily-bars table."""

MIN_BARS = 35
"""Bars needed before every feature is defined (MACD's 26-day average plus its 9-day signal)."""

POLARITY_CUTOFF = 0.25
"""A text scoring above this counts as positive, below its negative as negative."""


def compute_features(bars: pd.DataFrame, scored_texts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Feature rows for every bar with enough history, indexed by date.

    `scored_texts` has one row per text with columns `date` and `score` (in [-1, 1]).
    """
    # NumPy rather than pandas' rolling and ewm: the same arithmetic, and a tenth of the time
    # for the 60-bar windows processing computes once per symbol and run.
    frame = bars.sort_values("date")
    dates = pd.Index(frame["date"].to_numpy(), name="date")
    close = frame["close"].to_numpy(dtype="float64")
    volume = frame["volume"].to_numpy(dtype="float64")
    delta = _diff(close)
    gain = _ewm(np.clip(delta, 0, None), alpha=1 / 14)
    loss = _ewm(-np.clip(delta, None, 0), alpha=1 / 14)
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = 100 - 100 / (1 + gain / np.where(loss == 0, np.nan, loss))
        # MACD as a share of price, so symbols of any price level are comparable.
        macd = (_ewm(close, alpha=2 / 13) - _ewm(close, alpha=2 / 27)) / close
        vol_std = _rolling_std(volume, 20)
        volume_z = (volume - _rolling_mean(volume, 20)) / np.where(vol_std == 0, np.nan, vol_std)
        technical = pd.DataFrame(
            {
                "ret_1d": _pct_change(close, 1),
                "ret_5d": _pct_change(close, 5),
                "ret_20d": _pct_change(close, 20),
                "volatility_20d": _rolling_std(_diff(np.log(close)), 20) * np.sqrt(252),
                "rsi_14": np.nan_to_num(rsi, nan=100.0),
                "macd": macd,
                "macd_signal": _ewm(macd, alpha=2 / 10),
                "volume_z_20d": np.nan_to_num(volume_z, nan=0.0),
                "gap_overnight": frame["open"].to_numpy(dtype="float64") / _shift(close) - 1,
            },
            index=dates,
        )
    features = technical.join(sentiment_aggregates(scored_texts, dates))
    return features.iloc[MIN_BARS - 1 :].astype("float32")


def _shift(values: np.ndarray, periods: int = 1) -> np.ndarray:
    """Values moved `periods` rows later, NaN where nothing precedes them."""
    shifted = np.full_like(values, np.nan)
    shifted[periods:] = values[:-periods]
    return shifted


def _diff(values: np.ndarray) -> np.ndarray:
    """Change from the previous row, NaN for the first."""
    changed: np.ndarray = values - _shift(values)
    return changed


def _pct_change(values: np.ndarray, periods: int) -> np.ndarray:
    """Relative change over `periods` rows, NaN where there is no earlier row."""
    changed: np.ndarray = values / _shift(values, periods) - 1
    return changed


def _ewm(values: np.ndarray, *, alpha: float) -> np.ndarray:
    """Exponentially weighted mean as pandas' `ewm(alpha=..., adjust=False)`, leading NaN kept."""
    out = np.full_like(values, np.nan)
    mean = np.nan
    for i, value in enumerate(values.tolist()):
        if value != value:  # NaN: carries the last mean forward (pandas' ignore_na=False)
            out[i] = mean
            continue
        mean = value if mean != mean else (1 - alpha) * mean + alpha * value
        out[i] = mean
    return out


def _rolling(values: np.ndarray, window: int) -> np.ndarray:
    """Each row's trailing window (rows before a full window get none)."""
    return np.lib.stride_tricks.sliding_window_view(values, window)


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the trailing `window` rows; NaN until a full window or with a NaN inside."""
    out = np.full_like(values, np.nan)
    if len(values) >= window:
        out[window - 1 :] = _rolling(values, window).mean(axis=1)
    return out


def _rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation (ddof 1) of the trailing `window` rows, as `_rolling_mean`."""
    out = np.full_like(values, np.nan)
    if len(values) >= window:
        out[window - 1 :] = _rolling(values, window).std(axis=1, ddof=1)
    return out


def sentiment_aggregates(scored_texts: pd.DataFrame | None, dates: pd.Index) -> pd.DataFrame:
    """Per-day aggregates of text scores for the given dates; explicit gaps where none."""
    daily = np.full((len(dates), len(SENTIMENT_COLUMNS)), np.nan)
    daily[:, SENTIMENT_COLUMNS.index("sentiment_count")] = 0.0
    daily[:, SENTIMENT_COLUMNS.index("has_sentiment")] = 0.0
    if scored_texts is not None and len(scored_texts):
        rows = dates.get_indexer(pd.Index(scored_texts["date"]))
        scores = scored_texts["score"].to_numpy(dtype="float64")
        for row in np.unique(rows[rows >= 0]):
            day = scores[rows == row]
            daily[row] = (
                day.mean(),
                len(day),
                (day > POLARITY_CUTOFF).mean(),
                (day < -POLARITY_CUTOFF).mean(),
                day[np.argmax(np.abs(day))],  # the first of equally strong scores
                1.0,
            )
    return pd.DataFrame(daily, index=dates, columns=list(SENTIMENT_COLUMNS))


def next_day_up(bars: pd.DataFrame) -> pd.Series:
    """Training label: whether the next bar's close is above this bar's, indexed by date."""
    close = bars.sort_values("date").set_index("date")["close"]
    return (close.shift(-1) > close).where(close.shift(-1).notna())
