"""Monitoring's alerts: keyed so a decay alerts once per version and day and drift once per run,
naming what was measured."""

from __future__ import annotations

import datetime as dt

from marketsense.common.db.models import Challenge
from marketsense.monitoring.alerts import MAX_NAMED, challenge_alert, decay_alert, drift_alert
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


def _challenge(state: str, **fields: object) -> Challenge:
    values: dict[str, object] = {
        "id": 4,
        "model_name": "m",
        "champion_version": "1",
        "challenger_version": "2",
        "state": state,
        "started_on": dt.date(2026, 9, 2),
        "days": 10,
        "champion_sharpe": None,
        "challenger_sharpe": 2.5,
        "margin": 0.5,
        "decided_by": "monitoring",
        "reason": "the figures",
    }
    return Challenge(**(values | fields))


def test_each_challenge_decision_alerts_once_with_its_figures_and_what_follows() -> None:
    waiting = challenge_alert(_challenge("AWAITING_APPROVAL"))
    promoted = challenge_alert(_challenge("PROMOTED"))
    rejected = challenge_alert(_challenge("REJECTED", reason="the gate refused"))

    assert [a.key for a in (waiting, promoted, rejected)] == [
        "challenge:m:2:AWAITING_APPROVAL",
        "challenge:m:2:PROMOTED",
        "challenge:m:2:REJECTED",
    ]
    assert "Sharpe 2.50 against undefined, margin 0.50" in waiting.text
    assert "marketsense challenges approve 4 --reason" in waiting.text
    assert promoted.title == "m version 2 promoted to production"
    assert "Decided by monitoring: the figures" in promoted.text
    assert "the gate refused" in rejected.text
    assert "Production version 1 keeps serving" in rejected.text
