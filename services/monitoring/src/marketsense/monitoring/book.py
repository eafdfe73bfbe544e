"""The long-short book monitoring judges a predictor by: each prediction day, buy the top
`quantile` of the universe by score and sell the bottom `quantile`, equal weights, long leg +0.5
and short leg -0.5 (gross exposure 1), held over the next session."""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketsense.monitoring.ranking import day_positions, sorted_codes

_SHARE_SLACK = 1e-9
"""Keeps a share like 0.29 of 100 symbols (28.999... in floating point) at 29 names a leg."""


def leg_sizes(symbols: np.ndarray, quantile: float) -> np.ndarray:
    """Names in each leg: the `quantile` share of the day's symbols, rounded down."""
    return np.floor(symbols * quantile + _SHARE_SLACK).astype(int)


def book_weights(day_rows: pd.DataFrame, *, quantile: float) -> pd.Series:
    """Each row's weight in its day's book (0 outside it), aligned with `day_rows`.

    `day_rows` holds `day` (the day each book is for), `symbol` and `prob_up`. Symbols are ranked
    by score, and equal scores by symbol name (so at a tie on the cut the book buys the later
    names and sells the earlier ones), which makes the book the same on every run. A day with
    too few symbols for one name a leg holds no book.
    """
    order, position, size = day_positions(
        sorted_codes(day_rows["day"]),
        day_rows["prob_up"].to_numpy(dtype=float),
        sorted_codes(day_rows["symbol"]),
    )
    leg = leg_sizes(size, quantile)
    per_name = np.where(leg > 0, 0.5 / np.maximum(leg, 1), 0.0)
    in_order = np.where(position >= size - leg, per_name, 0.0)
    in_order = np.where(position < leg, -per_name, in_order)
    weight = np.empty(len(in_order))
    weight[order] = in_order
    return pd.Series(weight, index=day_rows.index, name="weight")


def turnover(day_rows: pd.DataFrame, weights: pd.Series, days: pd.Index) -> pd.Series:
    """Sum of |w_t - w_(t-1)| per day of `days`, against the book of the day before in `days`
    (the first from flat, so it counts the build-up); indexed by `days`."""
    position = pd.Series(np.arange(len(days)), index=days)
    held = pd.DataFrame(
        {
            "at": position.reindex(day_rows["day"]).to_numpy(),
            "symbol": day_rows["symbol"].to_numpy(),
            "weight": weights.to_numpy(),
        }
    )
    held = held[held["weight"] != 0]
    before = held.assign(at=held["at"] + 1)
    change = held.merge(before, on=["at", "symbol"], how="outer", suffixes=("", "_before"))
    change = change[change["at"] < len(days)].fillna({"weight": 0.0, "weight_before": 0.0})
    traded = (change["weight"] - change["weight_before"]).abs().groupby(change["at"]).sum()
    return pd.Series(traded.reindex(np.arange(len(days)), fill_value=0.0).to_numpy(), index=days)
