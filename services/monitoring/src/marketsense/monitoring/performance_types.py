"""The figures monitoring computes, shared by the loop, the API, the gauges and the report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

DAILY_COLUMNS: tuple[str, ...] = (
    "predictions",
    "hits",
    "book_positions",
    "book_hits",
    "ic",
    "rank_ic",
    "gross_return",
    "turnover",
    "strategy_return",
    "benchmark_return",
)
"""Columns of a daily performance frame (index `day`, the outcome day, ascending); one row of
`performance_daily` each. `ic` and `rank_ic` are NaN on a day they are undefined."""

RESOLVED_COLUMNS: tuple[str, ...] = ("symbol", "as_of", "outcome_day", "prob_up", "realized_return")
"""Columns of a frame of resolved predictions of one model version, the input of daily figures."""


@dataclass(frozen=True)
class ReturnStats:
    """Annualised figures of a daily return series; None where the series cannot define one."""

    sharpe: float | None
    sortino: float | None
    annual_return: float | None
    annual_volatility: float | None
    max_drawdown: float | None
    sharpe_low: float | None
    """Lower end of the Sharpe ratio's 95% confidence interval."""
    sharpe_high: float | None
    """Upper end of the Sharpe ratio's 95% confidence interval."""


@dataclass(frozen=True)
class WindowFigures:
    """One model version's performance over the last `window` outcome days."""

    window: int
    days: int
    """Outcome days the window actually holds (fewer than `window` early on)."""
    first_day: dt.date
    last_day: dt.date
    predictions: int
    accuracy: float | None
    """Share of resolved predictions whose direction was right."""
    hit_rate: float | None
    """Share of the book's positions that moved the way the book bet."""
    ic: float | None
    """Mean daily information coefficient (Pearson)."""
    rank_ic: float | None
    """Mean daily rank information coefficient (Spearman)."""
    strategy: ReturnStats
    benchmark: ReturnStats


@dataclass(frozen=True)
class DecayFinding:
    """The decay policy's verdict that a model version's performance has decayed."""

    day: dt.date
    window_start: dt.date
    window_end: dt.date
    observations: int
    sharpe: float
    benchmark_sharpe: float
    threshold: float
    confidence: float
    reason: str


@dataclass(frozen=True)
class DriftFigure:
    """One feature's distribution in a run against the served version's reference."""

    feature: str
    statistic: float
    p_value: float
    rows: int
    reference_rows: int
    drifted: bool
