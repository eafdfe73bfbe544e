"""Daily figures of one model version from its resolved predictions: direction hits, the long-short
book's return, turnover and hits, the information coefficients and the benchmark's return."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from marketsense.monitoring.book import book_weights, turnover
from marketsense.monitoring.performance_types import DAILY_COLUMNS, RESOLVED_COLUMNS
from marketsense.monitoring.ranking import average_ranks

MIN_IC_SYMBOLS = 3
"""Fewest symbols on a day for its information coefficients to be defined."""

_COUNTS = ("predictions", "hits", "book_positions", "book_hits")


def _checked(resolved: pd.DataFrame, quantile: float, cost_bps: float) -> None:
    """A clear error naming the column or setting when the input cannot be judged."""
    missing = [c for c in RESOLVED_COLUMNS if c not in resolved.columns]
    if missing:
        raise ValueError(f"resolved predictions lack the columns {missing}")
    if not 0 < quantile <= 0.5:
        raise ValueError(f"quantile (strategy_quantile) must be in (0, 0.5], got {quantile}")
    if not (math.isfinite(cost_bps) and cost_bps >= 0):
        raise ValueError(f"cost_bps (strategy_cost_bps) must be 0 or more, got {cost_bps}")
    for column in ("prob_up", "realized_return"):
        if not np.isfinite(resolved[column].to_numpy(dtype=float)).all():
            raise ValueError(f"resolved predictions have a missing or infinite {column}")


def _stamps(values: pd.Series) -> np.ndarray:
    """Dates as datetime64, converting each distinct value once (a history repeats few days)."""
    codes, uniques = pd.factorize(values)
    return np.asarray(pd.to_datetime(uniques).to_numpy())[codes]


def _prepared(
    resolved: pd.DataFrame, quantile: float, cost_bps: float
) -> tuple[pd.DataFrame, pd.Index]:
    """The rows, one per symbol and outcome day, with `day` the outcome day's position among
    the sorted outcome days and `symbol` the symbol's position in name order (integers group
    and sort fast); and the outcome days as dates."""
    _checked(resolved, quantile, cost_bps)
    outcome, made = _stamps(resolved["outcome_day"]), _stamps(resolved["as_of"])
    # Point in time: a score dated on or after the day it is judged by could know that day's
    # return, so no book may be formed from it.
    early = resolved["symbol"].to_numpy()[made >= outcome]
    if len(early):
        raise ValueError(
            f"predictions must be made before their outcome_day (as_of < outcome_day); "
            f"{len(early)} are not, e.g. {early[0]}"
        )
    day_code, day_values = pd.factorize(outcome, sort=True)
    rows = pd.DataFrame(
        {
            "day": day_code,
            "symbol": pd.factorize(resolved["symbol"], sort=True)[0],
            "made": made,
            "prob_up": resolved["prob_up"].to_numpy(dtype=float),
            "realized_return": resolved["realized_return"].to_numpy(dtype=float),
        }
    )
    # A day predicted twice (a rerun) counts once: the latest prediction, else the last row.
    rows = rows.sort_values(["day", "symbol", "made"], kind="stable")
    rows = rows.drop_duplicates(["day", "symbol"], keep="last").reset_index(drop=True)
    return rows, pd.Index(pd.DatetimeIndex(day_values).date, name="day")


def _correlation(day: pd.Series, x: pd.Series, y: pd.Series) -> pd.Series:
    """Pearson correlation of x and y across each day's rows; NaN with fewer than three rows or
    a constant side."""
    frame = pd.DataFrame({"day": day, "x": x, "y": y})
    grouped = frame.groupby("day", sort=True)
    dx = frame["x"] - grouped["x"].transform("mean")
    dy = frame["y"] - grouped["y"].transform("mean")
    sums = pd.DataFrame({"xy": dx * dy, "xx": dx * dx, "yy": dy * dy}).groupby(frame["day"]).sum()
    # Test constancy on the values: a constant's mean can miss it in the last bit.
    constant = (grouped["x"].max() == grouped["x"].min()) | (
        grouped["y"].max() == grouped["y"].min()
    )
    undefined = constant | (grouped.size() < MIN_IC_SYMBOLS)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr: pd.Series = (sums["xy"] / np.sqrt(sums["xx"] * sums["yy"])).clip(-1.0, 1.0)
    return corr.mask(undefined)


def _benchmark(rows: pd.DataFrame, days: pd.Index, benchmark: pd.Series | None) -> np.ndarray:
    """The benchmark's return each day: the given series, else the equal-weight mean of the
    day's realised returns (an equal-weight portfolio of the universe rebalanced daily)."""
    if benchmark is None:
        return rows.groupby("day")["realized_return"].mean().to_numpy()
    given = pd.Series(benchmark.to_numpy(dtype=float), index=pd.to_datetime(benchmark.index).date)
    given = given[~given.index.duplicated(keep="last")].reindex(days)
    absent = [str(day) for day, value in given.items() if not math.isfinite(value)]
    if absent:
        raise ValueError(f"the benchmark has no return for the outcome days {absent[:5]}")
    return given.to_numpy()


def _empty() -> pd.DataFrame:
    """A daily frame without days."""
    frame = pd.DataFrame({c: pd.Series(dtype=float) for c in DAILY_COLUMNS})
    frame[list(_COUNTS)] = frame[list(_COUNTS)].astype(int)
    return frame.rename_axis("day")


def daily_figures(
    resolved: pd.DataFrame,
    *,
    quantile: float,
    cost_bps: float,
    benchmark: pd.Series | None = None,
) -> pd.DataFrame:
    """Per outcome day (index `day`, ascending), the DAILY_COLUMNS figures of one model version's
    resolved predictions (RESOLVED_COLUMNS, horizon 1).

    A prediction is right when it says up (prob_up > 0.5) and the return is above 0, or says
    down and the return is not. The book of each day is formed from the day's predictions, made
    before it (`as_of < outcome_day`, else a ValueError), and earns the day's realised returns;
    its turnover is against the book of the previous row (the first row's from flat), and costs
    are `cost_bps` per unit of turnover.
    """
    if resolved.empty:
        _checked(resolved, quantile, cost_bps)
        return _empty()
    rows, days = _prepared(resolved, quantile, cost_bps)
    weight = book_weights(rows, quantile=quantile)
    realized = rows["realized_return"]
    up = realized > 0
    per_row = pd.DataFrame(
        {
            "predictions": 1,
            "hits": ((rows["prob_up"] > 0.5) == up).astype(int),
            "book_positions": (weight != 0).astype(int),
            "book_hits": (((weight > 0) & up) | ((weight < 0) & (realized < 0))).astype(int),
            "gross_return": weight * realized,
        }
    )
    day = rows["day"].to_numpy()
    ranks = (
        pd.Series(average_ranks(day, rows["prob_up"].to_numpy())),
        pd.Series(average_ranks(day, realized.to_numpy())),
    )
    traded = turnover(rows, weight, pd.RangeIndex(len(days))).to_numpy()
    sums = per_row.groupby(rows["day"], sort=True).sum()
    figures = sums.assign(
        ic=_correlation(rows["day"], rows["prob_up"], realized),
        rank_ic=_correlation(rows["day"], *ranks),
        turnover=traded,
        strategy_return=sums["gross_return"] - cost_bps / 1e4 * traded,
        benchmark_return=_benchmark(rows, days, benchmark),
    )
    figures.index = days
    return figures.loc[:, list(DAILY_COLUMNS)].rename_axis("day")
