"""A plain pandas groupby of the feature definitions (docs/features.md), for `bench/features.py`.

It is the obvious way to compute the features of a panel with pandas, and the yardstick the
vectorised `compute_feature_panel` is measured against; the bench also checks that both agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketsense.common.features import (
    FEATURE_COLUMNS,
    MACD_FAST_ALPHA,
    MACD_SIGNAL_ALPHA,
    MACD_SLOW_ALPHA,
    POLARITY_CUTOFF,
    RSI_ALPHA,
    RSI_PERIOD,
    SENTIMENT_COLUMNS,
    WARMUP_BARS,
    WINDOW,
)


def _ewm(values: pd.Series, keys: pd.Series, alpha: float) -> pd.Series:
    """Per-symbol exponentially weighted mean, seeded by the first value, gaps skipped."""
    grouped = values.groupby(keys, sort=False).ewm(alpha=alpha, adjust=False, ignore_na=True)
    return grouped.mean().droplevel(0)


def _rolling(values: pd.Series, keys: pd.Series) -> pd.core.window.RollingGroupby:  # type: ignore[name-defined]
    """Per-symbol trailing window of `WINDOW` rows."""
    return values.groupby(keys, sort=False).rolling(WINDOW)


def groupby_technical(bars: pd.DataFrame) -> pd.DataFrame:
    """Technical features of a long frame (symbol, date, OHLCV) sorted by symbol and date."""
    keys = bars["symbol"]
    close, volume = bars["close"], bars["volume"]
    by_symbol = close.groupby(keys, sort=False)
    prev = by_symbol.shift(1)
    delta = close - prev
    gain = _ewm(delta.clip(lower=0), keys, RSI_ALPHA)
    loss = _ewm((-delta).clip(lower=0), keys, RSI_ALPHA)
    moves = (delta.abs() > 0).groupby(keys, sort=False).rolling(RSI_PERIOD).sum().droplevel(0)
    macd = (_ewm(close, keys, MACD_FAST_ALPHA) - _ewm(close, keys, MACD_SLOW_ALPHA)) / close
    log_return = np.log(close) - np.log(prev)
    volume_std = _rolling(volume, keys).std().droplevel(0)
    usable = (volume_std > 0) & (_rolling(volume, keys).min().droplevel(0) > 0)
    volume_mean = _rolling(volume, keys).mean().droplevel(0)
    table = pd.DataFrame(
        {
            "symbol": keys,
            "date": bars["date"],
            "ret_1d": close / prev - 1,
            "ret_5d": close / by_symbol.shift(5) - 1,
            "ret_20d": close / by_symbol.shift(WINDOW) - 1,
            "volatility_20d": _rolling(log_return, keys).std().droplevel(0) * np.sqrt(252),
            "rsi_14": (100 * gain / (gain + loss)).where(moves > 0),
            "macd": macd,
            "macd_signal": _ewm(macd, keys, MACD_SIGNAL_ALPHA),
            "volume_z_20d": ((volume - volume_mean) / volume_std).where(usable),
            "gap_overnight": bars["open"] / prev - 1,
        }
    )
    return table[by_symbol.cumcount() >= WARMUP_BARS].reset_index(drop=True)


def groupby_sentiment(scored: pd.DataFrame) -> pd.DataFrame:
    """Sentiment aggregates per (symbol, date) of scored texts (symbol, date, score)."""
    scored = scored.assign(
        pos=scored["score"] > POLARITY_CUTOFF,
        neg=scored["score"] < -POLARITY_CUTOFF,
        strength=scored["score"].abs(),
    )
    grouped = scored.groupby(["symbol", "date"], sort=False)
    strongest = scored.loc[grouped["strength"].idxmax(), ["symbol", "date", "score"]]
    table = grouped.agg(
        sentiment_mean=("score", "mean"),
        sentiment_count=("score", "size"),
        sentiment_pos_share=("pos", "mean"),
        sentiment_neg_share=("neg", "mean"),
    ).reset_index()
    table = table.merge(strongest.rename(columns={"score": "sentiment_strongest"}))
    return table.assign(has_sentiment=1.0)


def groupby_features(bars: pd.DataFrame, scored: pd.DataFrame | None) -> pd.DataFrame:
    """Every feature column per (symbol, date) row after the warm-up, as a groupby computes it."""
    table = groupby_technical(bars)
    if scored is not None:
        table = table.merge(groupby_sentiment(scored), on=["symbol", "date"], how="left")
    else:
        table = table.assign(**{c: np.nan for c in SENTIMENT_COLUMNS})
    table["sentiment_count"] = table["sentiment_count"].fillna(0.0)
    table["has_sentiment"] = table["has_sentiment"].fillna(0.0)
    return table[["symbol", "date", *FEATURE_COLUMNS]]
