"""Technical features from daily bars, vectorised, under a named and versioned schema."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURE_SCHEMA = "technical-v1"
"""Name of the feature schema this module computes."""

FEATURE_COLUMNS: tuple[str, ...] = (
    "ret_1d",
    "ret_5d",
    "ret_20d",
    "volatility_20d",
    "rsi_14",
    "volume_z_20d",
)
"""Columns of a feature row, in the order models receive them."""

BAR_COLUMNS = ("date", "open", "high", "low", "close", "volume")
"""Columns of a daily-bars table."""

MIN_BARS = 21
"""Bars needed before the 20-day features are defined."""


def compute_features(bars: pd.DataFrame) -> pd.DataFrame:
    """Feature rows for every bar that has enough history; indexed by date."""
    frame = bars.sort_values("date").set_index("date")
    close = frame["close"].astype("float64")
    log_ret = pd.Series(np.log(close.to_numpy()), index=close.index).diff()
    delta = close.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-delta.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / loss.replace(0, np.nan))
    volume = frame["volume"].astype("float64")
    vol_mean = volume.rolling(20).mean()
    vol_std = volume.rolling(20).std()
    features = pd.DataFrame(
        {
            "ret_1d": close.pct_change(1),
            "ret_5d": close.pct_change(5),
            "ret_20d": close.pct_change(20),
            "volatility_20d": log_ret.rolling(20).std() * np.sqrt(252),
            "rsi_14": rsi.fillna(100.0),
            "volume_z_20d": ((volume - vol_mean) / vol_std.replace(0, np.nan)).fillna(0.0),
        },
        index=frame.index,
    )
    return features.iloc[MIN_BARS - 1 :].astype("float32")


def next_day_up(bars: pd.DataFrame) -> pd.Series:
    """Training label: whether the next bar's close is above this bar's, indexed by date."""
    close = bars.sort_values("date").set_index("date")["close"]
    return (close.shift(-1) > close).where(close.shift(-1).notna())
