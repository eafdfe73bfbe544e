"""What the gauges show, read from the database: each recent version's window figures, equity,
decay threshold and drift, and how many sessions have closed without an outcome or prediction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketsense.common.calendar import exchange_calendar
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.decay import decay_threshold
from marketsense.monitoring.drift_persistence import latest_drift, persistent_drift
from marketsense.monitoring.gauge_reads import (
    RunDrift,
    last_prediction_day,
    newest_drift,
    recent_versions,
)
from marketsense.monitoring.performance_reads import daily_frame
from marketsense.monitoring.performance_types import WindowFigures
from marketsense.monitoring.returns_stats import sharpe_ratio
from marketsense.monitoring.windows import window_figures


@dataclass(frozen=True)
class VersionFigures:
    """One model version's figures, as the gauges report them."""

    version: str
    windows: list[WindowFigures]
    equity: float | None
    """Growth of 1 invested in the strategy over every stored day; None before the first."""
    benchmark_equity: float | None
    threshold: float | None
    """The Sharpe the decay policy holds the strategy to; None before the first outcome day."""
    resolved: int
    last_outcome_day: dt.date | None
    drift: RunDrift | None
    drift_lasting: int
    """Features, not quiet, that drifted in each of the latest `drift_alert_runs` runs."""


@dataclass(frozen=True)
class ModelFigures:
    """The monitored model's figures: its recent versions, and its freshness."""

    model: str
    versions: list[VersionFigures]
    sessions_without_outcome: int | None
    """Sessions closed since the newest outcome day; None before any outcome."""
    sessions_without_prediction: int | None
    """Sessions closed since the newest day predicted for; None before any prediction."""


def sessions_closed_since(day: dt.date, now: dt.datetime) -> int:
    """New York sessions whose close has passed after `day`'s (0 while none has)."""
    calendar = exchange_calendar()
    closed = calendar.last_closed_session(now)
    if closed <= day:
        return 0
    return len(calendar.sessions(calendar.next_session(day), closed))


def policy_threshold(daily: pd.DataFrame, settings: MonitoringSettings) -> float:
    """The decay policy's threshold at the last row of `daily`: from the benchmark's Sharpe over
    the last `decay_reference_days` (a benchmark without one counts as cash, Sharpe 0)."""
    benchmark = daily["benchmark_return"].to_numpy(dtype=float)[-settings.decay_reference_days :]
    return decay_threshold(sharpe_ratio(benchmark) or 0.0, settings.decay_ratio)


async def version_figures(
    runtime: Runtime, settings: MonitoringSettings, *, model: str, version: str
) -> VersionFigures:
    """One version's figures from its stored daily rows and drift."""
    daily = await daily_frame(runtime, model=model, version=version)
    windows = sorted({*settings.performance_windows, settings.decay_window_days})
    figures = {w: window_figures(daily, w) for w in windows}
    strategy = np.cumprod(1 + daily["strategy_return"].to_numpy(dtype=float))
    benchmark = np.cumprod(1 + daily["benchmark_return"].to_numpy(dtype=float))
    return VersionFigures(
        version=version,
        windows=[f for f in figures.values() if f is not None],
        equity=float(strategy[-1]) if len(strategy) else None,
        benchmark_equity=float(benchmark[-1]) if len(benchmark) else None,
        threshold=policy_threshold(daily, settings) if len(daily) else None,
        resolved=int(daily["predictions"].sum()),
        last_outcome_day=daily.index[-1] if len(daily) else None,
        drift=await newest_drift(runtime, model=model, version=version),
        drift_lasting=await lasting_drift(runtime, settings, model=model, version=version),
    )


async def lasting_drift(
    runtime: Runtime, settings: MonitoringSettings, *, model: str, version: str
) -> int:
    """How many features the loop would alert on for the version's newest run."""
    runs = settings.drift_alert_runs
    latest = await latest_drift(runtime, model=model, version=version, runs=runs)
    return len(persistent_drift(latest, runs=runs, quiet=settings.drift_quiet_features))


async def model_figures(
    runtime: Runtime, settings: MonitoringSettings, *, now: dt.datetime
) -> ModelFigures:
    """The monitored model's figures: every version with figures in the last
    `gauge_version_days` days, and the sessions since its newest outcome and prediction."""
    model = settings.monitored_model
    versions = [
        await version_figures(runtime, settings, model=model, version=version)
        for version in await recent_versions(runtime, model=model, days=settings.gauge_version_days)
    ]
    outcome_days = [v.last_outcome_day for v in versions if v.last_outcome_day is not None]
    predicted = await last_prediction_day(runtime, model=model)
    return ModelFigures(
        model=model,
        versions=versions,
        sessions_without_outcome=sessions_closed_since(max(outcome_days), now)
        if outcome_days
        else None,
        sessions_without_prediction=sessions_closed_since(predicted, now) if predicted else None,
    )
