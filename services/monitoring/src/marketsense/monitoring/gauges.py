"""Prometheus gauges of every recent model version's live performance, refreshed from the
database so every replica reports the same values."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from prometheus_client import Gauge

from marketsense.common.clock import Clock, utc_now
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.gauge_figures import (
    ModelFigures,
    VersionFigures,
    model_figures,
)

log = logging.getLogger(__name__)

WINDOW = ["model", "version", "window"]
VERSION = ["model", "version"]

ACCURACY = Gauge(
    "marketsense_model_accuracy",
    "Share of resolved predictions whose direction was right, over the last `window` outcome days.",
    WINDOW,
)
HIT_RATE = Gauge(
    "marketsense_model_hit_rate",
    "Share of the strategy's positions that moved the way it bet, over the window.",
    WINDOW,
)
IC = Gauge("marketsense_model_ic", "Mean daily information coefficient over the window.", WINDOW)
RANK_IC = Gauge(
    "marketsense_model_rank_ic", "Mean daily rank information coefficient over the window.", WINDOW
)
SHARPE = Gauge(
    "marketsense_model_sharpe",
    "Annualised Sharpe ratio of the strategy's daily returns after costs, over the window.",
    WINDOW,
)
BENCHMARK_SHARPE = Gauge(
    "marketsense_model_benchmark_sharpe",
    "Annualised Sharpe ratio of the benchmark over the same outcome days.",
    WINDOW,
)
MAX_DRAWDOWN = Gauge(
    "marketsense_model_max_drawdown",
    "Largest fall of the strategy's equity from a peak over the window (0 to -1).",
    WINDOW,
)
SHARPE_THRESHOLD = Gauge(
    "marketsense_model_sharpe_threshold",
    "Sharpe ratio the decay policy holds the strategy to, set by the benchmark's Sharpe over "
    "`decay_reference_days` (see docs/monitoring.md); labelled with the decay window.",
    WINDOW,
)
EQUITY = Gauge(
    "marketsense_model_equity",
    "Growth of 1 invested in the strategy over every outcome day of the version.",
    VERSION,
)
BENCHMARK_EQUITY = Gauge(
    "marketsense_model_benchmark_equity",
    "Growth of 1 invested in the benchmark over the same outcome days.",
    VERSION,
)
OUTCOMES_RESOLVED = Gauge(
    "marketsense_model_outcomes_resolved",
    "Resolved predictions counted in the version's daily figures.",
    VERSION,
)
LAST_OUTCOME_DAY = Gauge(
    "marketsense_model_last_outcome_day_timestamp_seconds",
    "The version's newest outcome day, as the Unix time of its midnight UTC.",
    VERSION,
)
DRIFT = Gauge(
    "marketsense_model_drift_statistic",
    "Kolmogorov-Smirnov statistic of a feature in the version's newest measured run against "
    "its reference.",
    ["model", "version", "feature"],
)
FEATURES_DRIFTED = Gauge(
    "marketsense_model_features_drifted",
    "Features that drifted (statistic and p-value past their thresholds) in the version's "
    "newest measured run.",
    VERSION,
)
FEATURES_DRIFT_LASTING = Gauge(
    "marketsense_model_features_drift_lasting",
    "Features, other than drift_quiet_features, that drifted in each of the version's latest "
    "drift_alert_runs measured runs: what monitoring alerts on.",
    VERSION,
)
SESSIONS_WITHOUT_OUTCOME = Gauge(
    "marketsense_model_sessions_without_outcome",
    "New York sessions closed since the model's newest outcome day.",
    ["model"],
)
SESSIONS_WITHOUT_PREDICTION = Gauge(
    "marketsense_model_sessions_without_prediction",
    "New York sessions closed since the newest day the model predicted for.",
    ["model"],
)

Values = dict[Gauge, dict[tuple[str, ...], float]]


def _midnight(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()


def version_values(model: str, figures: VersionFigures, decay_window: int) -> Values:
    """The series one version's figures set; a figure that is None sets none."""
    values: Values = {}

    def put(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
        if value is not None:
            values.setdefault(gauge, {})[labels] = value

    for w in figures.windows:
        window = (model, figures.version, str(w.window))
        put(ACCURACY, window, w.accuracy)
        put(HIT_RATE, window, w.hit_rate)
        put(IC, window, w.ic)
        put(RANK_IC, window, w.rank_ic)
        put(SHARPE, window, w.strategy.sharpe)
        put(BENCHMARK_SHARPE, window, w.benchmark.sharpe)
        put(MAX_DRAWDOWN, window, w.strategy.max_drawdown)
    put(SHARPE_THRESHOLD, (model, figures.version, str(decay_window)), figures.threshold)
    labels = (model, figures.version)
    put(EQUITY, labels, figures.equity)
    put(BENCHMARK_EQUITY, labels, figures.benchmark_equity)
    if figures.last_outcome_day is not None:
        put(OUTCOMES_RESOLVED, labels, figures.resolved)
        put(LAST_OUTCOME_DAY, labels, _midnight(figures.last_outcome_day))
    if figures.drift is not None:
        put(FEATURES_DRIFTED, labels, figures.drift.drifted)
        put(FEATURES_DRIFT_LASTING, labels, figures.drift_lasting)
        for feature, statistic in figures.drift.statistics.items():
            put(DRIFT, (*labels, feature), statistic)
    return values


def model_values(figures: ModelFigures, decay_window: int) -> Values:
    """Every series the monitored model's figures set."""
    values: Values = {}
    for version in figures.versions:
        for gauge, series in version_values(figures.model, version, decay_window).items():
            values.setdefault(gauge, {}).update(series)
    for gauge, value in (
        (SESSIONS_WITHOUT_OUTCOME, figures.sessions_without_outcome),
        (SESSIONS_WITHOUT_PREDICTION, figures.sessions_without_prediction),
    ):
        if value is not None:
            values.setdefault(gauge, {})[(figures.model,)] = value
    return values


class GaugeRefresher:
    """Sets the gauges from the database every `gauge_refresh_seconds`, and removes the series
    of versions that no longer have recent figures, so label sets stay few."""

    def __init__(self, runtime: Runtime, settings: MonitoringSettings, clock: Clock = utc_now):
        self.runtime = runtime
        self.settings = settings
        self.clock = clock
        self.published: dict[Gauge, set[tuple[str, ...]]] = {}

    async def refresh(self) -> None:
        """Read the figures once and publish them."""
        figures = await model_figures(self.runtime, self.settings, now=self.clock())
        self.publish(model_values(figures, self.settings.decay_window_days))

    def publish(self, values: Values) -> None:
        """Set every series in `values` and remove the ones set before that it lacks."""
        for gauge in {*self.published, *values}:
            series = values.get(gauge, {})
            for labels in self.published.get(gauge, set()) - series.keys():
                gauge.remove(*labels)
            for labels, value in series.items():
                gauge.labels(*labels).set(value)
        self.published = {gauge: set(series) for gauge, series in values.items()}

    async def run(self) -> None:
        """Refresh until cancelled; a failed refresh keeps the last values and is retried."""
        while True:
            try:
                await self.refresh()
            except Exception:  # the loop must outlive a database outage; the log says why
                log.exception("refreshing the model gauges failed")
            await asyncio.sleep(self.settings.gauge_refresh_seconds)
