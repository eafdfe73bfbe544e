"""The monitoring API's models: window figures per version, the daily series, drift, decay alerts.

Every float is finite; a figure a series cannot define is null, never NaN.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


def _finite(value: float | None) -> float | None:
    """None for NaN or an infinity: JSON has no such numbers and a client cannot act on them."""
    return None if value is None or not math.isfinite(value) else value


Figure = Annotated[float | None, AfterValidator(_finite)]
"""A figure, null where the data cannot define it."""


class ReturnStatsRead(BaseModel):
    """Annualised figures of a daily return series (252 trading days a year)."""

    model_config = ConfigDict(from_attributes=True)

    sharpe: Figure
    sortino: Figure
    annual_return: Figure
    annual_volatility: Figure
    max_drawdown: Figure
    """Worst fall from a peak of the compounded series, as a negative fraction."""
    sharpe_low: Figure
    """Lower end of the Sharpe ratio's 95% confidence interval."""
    sharpe_high: Figure
    """Upper end of the Sharpe ratio's 95% confidence interval."""


class WindowFiguresRead(BaseModel):
    """One model version's performance over its last `window` outcome days."""

    model_config = ConfigDict(from_attributes=True)

    window: int
    """The configured window, in trading days."""
    days: int
    """Outcome days the window holds (fewer than `window` early on)."""
    first_day: dt.date
    last_day: dt.date
    predictions: int
    accuracy: Figure
    """Share of resolved predictions whose direction was right."""
    hit_rate: Figure
    """Share of the book's positions that moved the way the book bet."""
    ic: Figure
    """Mean daily information coefficient (Pearson)."""
    rank_ic: Figure
    """Mean daily rank information coefficient (Spearman)."""
    strategy: ReturnStatsRead
    """The long-short book's returns after costs."""
    benchmark: ReturnStatsRead


class VersionPerformanceRead(BaseModel):
    """One model version's figures for every window asked."""

    version: str
    aliases: list[str]
    """The registry's aliases naming this version now, such as `production`."""
    last_day: dt.date
    """Latest outcome day with figures."""
    windows: list[WindowFiguresRead]


class PerformanceRead(BaseModel):
    """A model's versions side by side: the production version first, then challengers."""

    model: str
    windows: list[int]
    """The configured windows (the setting `performance_windows`)."""
    decay_ratio: float
    """The decay policy's ratio of the strategy's Sharpe to the benchmark's."""
    decay_reference_days: int
    """Outcome days the decay policy measures the benchmark's Sharpe over."""
    versions: list[VersionPerformanceRead]


class PerformanceDayRead(BaseModel):
    """One model version's figures for one outcome day."""

    model_config = ConfigDict(from_attributes=True)

    day: dt.date
    """Outcome day: the session whose close realised the day's returns."""
    predictions: int
    hits: int
    book_positions: int
    book_hits: int
    ic: Figure
    rank_ic: Figure
    gross_return: Figure
    turnover: Figure
    strategy_return: Figure
    """The book's return after costs."""
    benchmark_return: Figure


class PerformanceDayPage(BaseModel):
    """A page of a version's daily series, newest day first."""

    model: str
    version: str
    items: list[PerformanceDayRead]
    next_cursor: str | None
    """Pass back as `cursor` for the next page; null on the last one."""


class DriftRead(BaseModel):
    """One feature's distribution in one run against the served version's reference."""

    model_config = ConfigDict(from_attributes=True)

    run_id: str
    as_of: dt.date
    model_name: str
    model_version: str
    feature: str
    statistic: Figure
    """Two-sample Kolmogorov-Smirnov statistic, 0 to 1."""
    p_value: Figure
    rows: int
    reference_rows: int
    drifted: bool


class DriftPage(BaseModel):
    """A page of drift measurements, newest run first."""

    items: list[DriftRead]
    next_cursor: str | None
    """Pass back as `cursor` for the next page; null on the last one."""


class DecayAlertRead(BaseModel):
    """A decay the policy found."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    model_name: str
    model_version: str
    day: dt.date
    """Last outcome day of the window that showed the decay."""
    window_start: dt.date
    window_end: dt.date
    observations: int
    sharpe: Figure
    benchmark_sharpe: Figure
    threshold: Figure
    confidence: Figure
    """How sure the policy is that the true Sharpe is below the threshold, 0 to 1."""
    reason: str
    created_at: dt.datetime


class DecayAlertPage(BaseModel):
    """A page of decay alerts, newest first."""

    items: list[DecayAlertRead]
    next_cursor: str | None
    """Pass back as `cursor` for the next page; null on the last one."""
