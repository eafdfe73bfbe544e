"""A failed retrain's alert names the request, its model, the error and where to look."""

from __future__ import annotations

import datetime as dt

from marketsense.retraining.alerts import retrain_failed_alert
from marketsense.retraining.store import Claim


def test_the_failure_alert_says_what_failed_and_that_production_keeps_serving() -> None:
    claim = Claim(
        id="r-1",
        model_name="baseline-predictor",
        reason="Sharpe decayed",
        window_start=dt.date(2026, 6, 1),
        window_end=dt.date(2026, 6, 30),
        attempts=3,
    )
    alert = retrain_failed_alert(claim, error="registry unreachable")
    assert alert.key == "retrain-failed:r-1"
    assert alert.title == "Retraining baseline-predictor failed after 3 attempt(s)"
    assert "registry unreachable" in alert.text
    assert "GET /v1/retrains/r-1" in alert.text
    assert "production keeps serving" in alert.text
