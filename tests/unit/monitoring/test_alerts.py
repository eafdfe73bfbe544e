"""Monitoring's alerts: keyed so a decay alerts once per version and day and drift once per run,
naming what was measured."""

from __future__ import annotations

import datetime as dt

from marketsense.monitoring.alerts import MAX_NAMED, decay_alert, drift_alert
from marketsense.monitoring.performance_types import DecayFinding, DriftFigure

FINDING = DecayFinding(
    day=dt.date(2026, 10, 26),
    window_start=dt.date(2026, 9, 25),
    window_end=dt.date(2026, 10, 26),
    observations=21,
    sharpe=-3.25,
    benchmark_sharpe=0.8,
    threshold=0.88,
    confidence=0.97,
    reason="Sharpe -3.25 below 1.1 times the benchmark's 0.80",
)


def figure(feature: str, statistic: float, *, drifted: bool) -> DriftFigure:
    """One feature's drift figure."""
    return DriftFigure(feature, statistic, 1e-6 if drifted else 0.4, 500, 20_000, drifted)


def test_a_decay_alert_is_keyed_by_model_version_and_day_and_names_the_window() -> None:
    alert = decay_alert(model="baseline-predictor", version="v3", finding=FINDING)

    assert alert.key == "decay:baseline-predictor:v3:2026-10-26"
    assert "-3.25" in alert.title
    assert "0.88" in alert.title
    assert "2026-09-25 to 2026-10-26" in alert.text
    assert FINDING.reason in alert.text


def test_a_drift_alert_names_the_drifted_features_most_drifted_first() -> None:
    figures = [
        figure("rsi_14", 0.31, drifted=True),
        figure("volume_z", 0.05, drifted=False),
        figure("return_1d", 0.62, drifted=True),
    ]

    alert = drift_alert(run_id="r1", as_of=dt.date(2026, 10, 26), figures=figures)

    assert alert is not None
    assert alert.key == "drift:r1"
    assert "2 of 3 features" in alert.text
    assert alert.text.index("return_1d") < alert.text.index("rsi_14")
    assert "volume_z" not in alert.text


def test_no_drifted_feature_is_no_alert_and_many_are_counted() -> None:
    assert drift_alert(run_id="r1", as_of=None, figures=[figure("a", 0.1, drifted=False)]) is None

    many = [figure(f"f{i}", 0.5, drifted=True) for i in range(MAX_NAMED + 5)]
    alert = drift_alert(run_id="r1", as_of=None, figures=many)

    assert alert is not None
    assert "... and 5 more" in alert.text
