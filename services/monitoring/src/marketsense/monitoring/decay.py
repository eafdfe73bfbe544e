"""The decay policy: alert when a strategy's Sharpe falls below a multiple of its benchmark's.

The rule is the product brief's (strategy Sharpe below `ratio` times the benchmark's), made sound
against noise in three steps, each a setting (see docs/monitoring.md, "Decay policy"):

1. The threshold comes from the benchmark's Sharpe over the longer reference window, so a quiet
   or lucky month of the benchmark does not move the bar; a negative benchmark Sharpe still
   asks the strategy to beat it by `ratio - 1` of its magnitude.
2. A one-sided CUSUM of the strategy's standardised daily returns (winsorised at `winsor`)
   against the threshold finds the recent stretch (at most `window` days) that fell furthest
   short, and fires when the shortfall passes `limit` days' standard deviations.
3. The probabilistic Sharpe ratio (Bailey and Lopez de Prado) of that stretch must say, with at
   least `confidence`, that its true Sharpe is below the threshold.

After an alert the sum restarts, and the same version cannot alert again for `cooldown` days.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.performance_types import DecayFinding
from marketsense.monitoring.returns_stats import (
    PERIODS_PER_YEAR,
    probabilistic_sharpe,
    sharpe_ratio,
)

MIN_STRETCH = 5
"""Fewest days the confidence is measured over: skew and kurtosis of fewer mean little."""


@dataclass(frozen=True)
class DecayPolicy:
    """When a model version's live performance counts as decayed."""

    ratio: float = 1.1
    """The strategy's Sharpe must stay above this times the benchmark's."""
    window: int = 21
    """Longest recent stretch, in outcome days, the shortfall is summed over."""
    min_observations: int = 63
    """Fewest outcome days before the policy judges at all."""
    reference_days: int = 252
    """Outcome days the benchmark's Sharpe is measured over."""
    volatility_days: int = 63
    """Outcome days the strategy's volatility, which standardises its returns, is measured over."""
    limit: float = 4.0
    """Shortfall below the threshold, in days' standard deviations, that raises the alarm."""
    confidence: float = 0.9
    """How sure the stretch's probabilistic Sharpe ratio must be that it is below the threshold."""
    cooldown: int = 21
    """Outcome days after an alert before the same version can raise another."""
    winsor: float = 3.0
    """A day's standardised return counts at most this many standard deviations either way."""

    def __post_init__(self) -> None:
        if self.window < MIN_STRETCH or self.min_observations < MIN_STRETCH:
            raise ValueError(f"decay window and minimum observations are at least {MIN_STRETCH}")
        if min(self.reference_days, self.volatility_days) < self.min_observations:
            raise ValueError(
                "decay reference and volatility days must be at least the minimum observations"
            )
        if not (self.ratio > 0 and self.limit > 0 and self.winsor > 0):
            raise ValueError("decay ratio, limit and winsor are positive")
        if not 0 < self.confidence < 1:
            raise ValueError("decay confidence is between 0 and 1")

    @classmethod
    def from_settings(cls, settings: MonitoringSettings) -> DecayPolicy:
        """The policy the monitoring settings describe."""
        return cls(
            ratio=settings.decay_ratio,
            window=settings.decay_window_days,
            min_observations=settings.decay_min_observations,
            reference_days=settings.decay_reference_days,
            volatility_days=settings.decay_volatility_days,
            limit=settings.decay_limit,
            confidence=settings.decay_confidence,
            cooldown=settings.decay_cooldown_days,
            winsor=settings.decay_winsor,
        )


def decay_threshold(benchmark_sharpe: float, ratio: float) -> float:
    """The Sharpe the strategy must keep: `ratio` times a positive benchmark's, and for a
    negative one the benchmark plus `ratio - 1` of its magnitude (continuous at zero)."""
    return benchmark_sharpe + (ratio - 1) * abs(benchmark_sharpe)


@dataclass(frozen=True)
class _Series:
    """A daily frame's days and returns as arrays, sliced cheaply while replaying."""

    days: list[dt.date]
    strategy: np.ndarray
    benchmark: np.ndarray

    @classmethod
    def of(cls, daily: pd.DataFrame) -> _Series:
        """The arrays of a daily frame (DAILY_COLUMNS, ascending days)."""
        return cls(
            days=list(daily.index),
            strategy=daily["strategy_return"].to_numpy(dtype=float),
            benchmark=daily["benchmark_return"].to_numpy(dtype=float),
        )


def judge(
    daily: pd.DataFrame, policy: DecayPolicy, *, last_alert_day: dt.date | None
) -> DecayFinding | None:
    """The policy's verdict at the last row of `daily` (DAILY_COLUMNS, ascending days)."""
    series = _Series.of(daily)
    return _verdict(series, len(series.days), policy, last_alert_day)


def replay(daily: pd.DataFrame, policy: DecayPolicy) -> list[DecayFinding]:
    """The findings the policy raises judging `daily` day by day, with its cooldown."""
    series = _Series.of(daily)
    findings: list[DecayFinding] = []
    last: dt.date | None = None
    for end in range(policy.min_observations, len(series.days) + 1):
        finding = _verdict(series, end, policy, last)
        if finding is not None:
            findings.append(finding)
            last = finding.day
    return findings


def judge_from(
    daily: pd.DataFrame, policy: DecayPolicy, *, first: dt.date, last_alert_day: dt.date | None
) -> list[DecayFinding]:
    """The findings of judging every row from `first` on, day by day with the cooldown, as the
    daily runs of those days would have: a backfill's days judged as if they came one by one."""
    series = _Series.of(daily)
    findings: list[DecayFinding] = []
    for end in range(bisect.bisect_left(series.days, first) + 1, len(series.days) + 1):
        finding = _verdict(series, end, policy, last_alert_day)
        if finding is not None:
            findings.append(finding)
            last_alert_day = finding.day
    return findings


def _verdict(
    series: _Series, end: int, policy: DecayPolicy, last_alert_day: dt.date | None
) -> DecayFinding | None:
    """The verdict at row `end - 1` of the series, judging only the rows before `end`."""
    if end < policy.min_observations:
        return None
    since_alert = end
    if last_alert_day is not None:
        since_alert = end - bisect.bisect_right(series.days, last_alert_day, hi=end)
        if since_alert <= policy.cooldown:
            return None
    start = max(end - policy.reference_days, 0)
    # A benchmark with no defined Sharpe (flat) is cash: Sharpe 0.
    benchmark_sharpe = sharpe_ratio(series.benchmark[start:end]) or 0.0
    threshold = decay_threshold(benchmark_sharpe, policy.ratio)
    # A shorter window than the benchmark's: the book's volatility comes and goes in clusters.
    strategy = series.strategy[max(end - policy.volatility_days, 0) : end]
    scale = float(np.std(strategy, ddof=1))
    if not math.isfinite(scale) or scale <= 0:
        return None
    recent = strategy[-min(policy.window, since_alert) :]
    # Winsorised: one freak day (real books have fat tails) cannot pass the limit alone.
    z = np.clip(recent / scale, -policy.winsor, policy.winsor)
    shortfall, length = _largest_shortfall(z, threshold / math.sqrt(PERIODS_PER_YEAR))
    if shortfall <= policy.limit:
        return None
    first = end - min(max(length, MIN_STRETCH), len(strategy))
    returns = series.strategy[first:end]
    above = probabilistic_sharpe(returns, threshold)
    sharpe = sharpe_ratio(returns)
    if above is None or sharpe is None or 1 - above < policy.confidence:
        return None
    window = (series.days[first], series.days[end - 1])
    reason = (
        f"Sharpe {sharpe:.2f} over the {len(returns)} outcome days {window[0]} to {window[1]} "
        f"is below the threshold {threshold:.2f} ({policy.ratio:g} x the benchmark's "
        f"{benchmark_sharpe:.2f} over {end - start} days) with confidence {1 - above:.2f}; "
        f"shortfall {shortfall:.1f} daily standard deviations"
    )
    return DecayFinding(
        day=window[1],
        window_start=window[0],
        window_end=window[1],
        observations=len(returns),
        sharpe=sharpe,
        benchmark_sharpe=benchmark_sharpe,
        threshold=threshold,
        confidence=1 - above,
        reason=reason,
    )


def _largest_shortfall(z: np.ndarray, threshold: float) -> tuple[float, int]:
    """The largest sum of `threshold - z` over a stretch ending at the last day, and its length.

    This is the one-sided CUSUM statistic, limited to the stretch `z` covers.
    """
    sums = np.cumsum((threshold - z)[::-1])
    best = int(np.argmax(sums))
    return float(sums[best]), best + 1
