"""A model version's figures over a window of its last outcome days."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from marketsense.monitoring.performance_types import WindowFigures
from marketsense.monitoring.returns_stats import return_stats


def _day(value: object) -> dt.date:
    """An index label as a date (stored frames hold dates, computed ones may hold timestamps)."""
    if isinstance(value, dt.datetime):  # pandas' Timestamp too
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"daily figures are indexed by day, got {value!r}")


def _share(part: float, whole: float) -> float | None:
    """part / whole, or None of nothing."""
    return float(part / whole) if whole > 0 else None


def _mean_defined(values: pd.Series) -> float | None:
    """Mean of the defined (not NaN) values, None when there are none."""
    defined = values.to_numpy(dtype=float)
    defined = defined[np.isfinite(defined)]
    return float(defined.mean()) if len(defined) else None


def window_figures(daily: pd.DataFrame, window: int) -> WindowFigures | None:
    """Figures over the last `window` rows of a daily frame (DAILY_COLUMNS, index `day`
    ascending); None when it has no rows. Accuracy and hit rate pool the window's predictions
    and positions; IC and rank IC are the mean of the days' defined values."""
    if window < 1:
        raise ValueError(f"window must be at least 1 trading day, got {window}")
    last = daily.sort_index().tail(window)
    if last.empty:
        return None
    return WindowFigures(
        window=window,
        days=len(last),
        first_day=_day(last.index[0]),
        last_day=_day(last.index[-1]),
        predictions=int(last["predictions"].sum()),
        accuracy=_share(last["hits"].sum(), last["predictions"].sum()),
        hit_rate=_share(last["book_hits"].sum(), last["book_positions"].sum()),
        ic=_mean_defined(last["ic"]),
        rank_ic=_mean_defined(last["rank_ic"]),
        strategy=return_stats(last["strategy_return"].to_numpy(dtype=float)),
        benchmark=return_stats(last["benchmark_return"].to_numpy(dtype=float)),
    )
