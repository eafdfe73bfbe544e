"""Features from daily bars and scored texts, vectorised, under a named and versioned schema."""

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
    frame = bars.sort_values("date").set_index("date")
    close = frame["close"].astype("float64")
    log_ret = pd.Series(np.log(close.to_numpy()), index=close.index).diff()
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / loss.replace(0, np.nan))
    # MACD as a share of price, so symbols of any price level are comparable.
    macd = (
        close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    ) / close
    volume = frame["volume"].astype("float64")
    vol_mean = volume.rolling(20).mean()
    vol_std = volume.rolling(20).std()
    technical = pd.DataFrame(
        {
            "ret_1d": close.pct_change(1),
            "ret_5d": close.pct_change(5),
            "ret_20d": close.pct_change(20),
            "volatility_20d": log_ret.rolling(20).std() * np.sqrt(252),
            "rsi_14": rsi.fillna(100.0),
            "macd": macd,
            "macd_signal": macd.ewm(span=9, adjust=False).mean(),
            "volume_z_20d": ((volume - vol_mean) / vol_std.replace(0, np.nan)).fillna(0.0),
            "gap_overnight": frame["open"].astype("float64") / close.shift(1) - 1,
        },
        index=frame.index,
    )
    features = technical.join(sentiment_aggregates(scored_texts, technical.index))
    return features.iloc[MIN_BARS - 1 :].astype("float32")


def sentiment_aggregates(scored_texts: pd.DataFrame | None, dates: pd.Index) -> pd.DataFrame:
    """Per-day aggregates of text scores for the given dates; explicit gaps where none."""
    scores = scored_texts if scored_texts is not None else pd.DataFrame({"date": [], "score": []})
    score = scores["score"].astype("float64")
    strongest = scores.loc[score.abs().groupby(scores["date"]).idxmax()] if len(scores) else scores
    daily = pd.DataFrame(
        {
            "sentiment_mean": score.groupby(scores["date"]).mean(),
            "sentiment_count": score.groupby(scores["date"]).size(),
            "sentiment_pos_share": (score > POLARITY_CUTOFF).groupby(scores["date"]).mean(),
            "sentiment_neg_share": (score < -POLARITY_CUTOFF).groupby(scores["date"]).mean(),
            "sentiment_strongest": strongest.set_index("date")["score"].astype("float64"),
        }
    ).reindex(dates)
    daily["sentiment_count"] = daily["sentiment_count"].fillna(0.0)
    daily["has_sentiment"] = (daily["sentiment_count"] > 0).astype("float64")
    return daily[list(SENTIMENT_COLUMNS)]


def next_day_up(bars: pd.DataFrame) -> pd.Series:
    """Training label: whether the next bar's close is above this bar's, indexed by date."""
    close = bars.sort_values("date").set_index("date")["close"]
    return (close.shift(-1) > close).where(close.shift(-1).notna())
