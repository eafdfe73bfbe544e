"""Placeholder of the decay policy (its own change replaces it): the signatures the monitoring
loop calls, with the plain rule (Sharpe below the ratio times the benchmark's over the window)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.performance_types import DecayFinding


@dataclass(frozen=True)
class DecayPolicy:
    """When a version's performance counts as decayed."""

    ratio: float
    window: int
    min_observations: int
    cooldown: int

    @classmethod
    def from_settings(cls, settings: MonitoringSettings) -> DecayPolicy:
        """The policy the settings choose."""
        return cls(
            ratio=settings.decay_ratio,
            window=settings.decay_window_days,
            min_observations=settings.decay_min_observations,
            cooldown=settings.decay_cooldown_days,
        )


def _sharpe(returns: np.ndarray) -> float:
    spread = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    return float(np.mean(returns)) / spread * math.sqrt(252) if spread > 0 else 0.0


def judge(
    daily: pd.DataFrame, policy: DecayPolicy, *, last_alert_day: dt.date | None
) -> DecayFinding | None:
    """The finding at the last row of `daily`, or None."""
    if daily.empty:
        return None
    if last_alert_day is not None and (daily.index > last_alert_day).sum() <= policy.cooldown:
        return None
    window = daily.tail(policy.window)
    if len(window) < policy.min_observations:
        return None
    sharpe = _sharpe(window["strategy_return"].to_numpy(dtype=float))
    benchmark = _sharpe(window["benchmark_return"].to_numpy(dtype=float))
    threshold = policy.ratio * abs(benchmark)
    if sharpe >= threshold:
        return None
    return DecayFinding(
        day=window.index[-1],
        window_start=window.index[0],
        window_end=window.index[-1],
        observations=len(window),
        sharpe=sharpe,
        benchmark_sharpe=benchmark,
        threshold=threshold,
        confidence=1.0,
        reason=f"Sharpe {sharpe:.2f} below {threshold:.2f} over {len(window)} days",
    )


def replay(daily: pd.DataFrame, policy: DecayPolicy) -> list[DecayFinding]:
    """Judged day by day with the cooldown."""
    found: list[DecayFinding] = []
    for end in range(1, len(daily) + 1):
        finding = judge(daily.iloc[:end], policy, last_alert_day=found[-1].day if found else None)
        if finding is not None:
            found.append(finding)
    return found
