"""The model gauges show what the monitoring figures say about the stored rows, and versions
without recent figures drop out of them."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY

from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.engine import Database
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.decay import decay_threshold
from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.gauge_figures import sessions_closed_since
from marketsense.monitoring.gauges import GaugeRefresher
from marketsense.monitoring.returns_stats import sharpe_ratio
from marketsense.monitoring.windows import window_figures
from tests.conftest import TEST_AS_OF
from tests.gauge_support import resolved_predictions, store_daily, store_drift

NOW = dt.datetime(2026, 11, 24, 22, tzinfo=dt.UTC)
"""After the close of the second session past TEST_AS_OF."""


def gauge(name: str, **labels: str) -> float | None:
    """A gauge's value in this process's registry; None when the series does not exist."""
    return REGISTRY.get_sample_value(name, labels)


def assert_version_gauges(model: str, version: str, daily: pd.DataFrame) -> None:
    """Each window's gauges equal the window figures of the version's daily rows; its equity,
    newest outcome day and resolved count equal theirs."""
    for window in (21, 63, 252):
        figures = window_figures(daily, window)
        assert figures is not None
        labels = {"model": model, "version": version, "window": str(window)}
        assert gauge("marketsense_model_accuracy", **labels) == pytest.approx(figures.accuracy)
        assert gauge("marketsense_model_rank_ic", **labels) == pytest.approx(figures.rank_ic)
        assert gauge("marketsense_model_sharpe", **labels) == pytest.approx(figures.strategy.sharpe)
        assert gauge("marketsense_model_benchmark_sharpe", **labels) == pytest.approx(
            figures.benchmark.sharpe
        )
        assert gauge("marketsense_model_max_drawdown", **labels) == pytest.approx(
            figures.strategy.max_drawdown
        )
    equity = np.prod(1 + daily["strategy_return"].to_numpy())
    assert gauge("marketsense_model_equity", model=model, version=version) == pytest.approx(equity)
    assert (
        gauge("marketsense_model_last_outcome_day_timestamp_seconds", model=model, version=version)
        == dt.datetime.combine(daily.index[-1], dt.time(), dt.UTC).timestamp()
    )
    assert gauge("marketsense_model_outcomes_resolved", model=model, version=version) == (
        daily["predictions"].sum()
    )


async def test_gauges_equal_the_figures_of_the_stored_rows_and_stale_versions_drop_out(
    runtime: Runtime, database: Database, tmp_path: Path, database_url: str
) -> None:
    model = f"predictor-{uuid.uuid4().hex[:8]}"  # gauges are process-wide: a model of its own
    champion = daily_figures(
        resolved_predictions(end=TEST_AS_OF, days=90, score_noise=0.05),
        quantile=0.2,
        cost_bps=5.0,
    )
    # An older version, retired some 50 sessions ago, and a noisier one.
    retired_end = exchange_calendar().sessions(TEST_AS_OF - dt.timedelta(days=100), TEST_AS_OF)[0]
    retired = daily_figures(
        resolved_predictions(end=retired_end, days=40, score_noise=1.0),
        quantile=0.2,
        cost_bps=5.0,
    )
    await store_daily(database, model=model, version="3", daily=champion)
    await store_daily(database, model=model, version="2", daily=retired)
    await store_drift(
        database, model=model, version="3", as_of=TEST_AS_OF - dt.timedelta(days=1),
        statistics={"ret_1d": 0.9, "volume_z": 0.5},
    )  # fmt: skip
    newest = {"ret_1d": 0.12, "volume_z": 0.31, "sentiment_mean": 0.05}
    await store_drift(database, model=model, version="3", as_of=TEST_AS_OF, statistics=newest)

    def settings(days: int) -> MonitoringSettings:
        return MonitoringSettings(
            home=tmp_path, database_url=database_url, monitored_model=model, gauge_version_days=days
        )

    refresher = GaugeRefresher(runtime, settings(365), clock=lambda: NOW)
    await refresher.refresh()

    for version, daily in (("3", champion), ("2", retired)):
        assert_version_gauges(model, version, daily)

    reference = sharpe_ratio(champion["benchmark_return"].to_numpy()[-252:])
    assert reference is not None
    assert gauge(
        "marketsense_model_sharpe_threshold", model=model, version="3", window="21"
    ) == pytest.approx(decay_threshold(reference, 1.1))
    # Only the decay window has a threshold; the drift shown is the newest run's.
    longer = {"model": model, "version": "3", "window": "63"}
    assert gauge("marketsense_model_sharpe_threshold", **longer) is None
    for feature, statistic in newest.items():
        assert gauge(
            "marketsense_model_drift_statistic", model=model, version="3", feature=feature
        ) == pytest.approx(statistic)
    assert gauge("marketsense_model_features_drifted", model=model, version="3") == 1
    # One measured run is not yet a lasting drift (drift_alert_runs is 3).
    assert gauge("marketsense_model_features_drift_lasting", model=model, version="3") == 0
    assert gauge("marketsense_model_sessions_without_outcome", model=model) == (
        sessions_closed_since(champion.index[-1], NOW)
    )
    # No run predicted for this model: no series rather than a made-up figure.
    assert gauge("marketsense_model_sessions_without_prediction", model=model) is None

    # With the default horizon, the retired version's series go; the champion's stay.
    refresher.settings = settings(30)
    await refresher.refresh()

    for name in ("accuracy", "sharpe", "max_drawdown"):
        assert gauge(f"marketsense_model_{name}", model=model, version="2", window="21") is None
    assert gauge("marketsense_model_equity", model=model, version="2") is None
    assert gauge("marketsense_model_equity", model=model, version="3") is not None
