"""Signals from probabilities."""

from __future__ import annotations

import pytest

from marketsense.prediction.scoring import signal_for


@pytest.mark.parametrize(
    ("prob", "signal"), [(0.56, "up"), (0.55, "up"), (0.5, "flat"), (0.45, "down"), (0.2, "down")]
)
def test_signal_needs_the_probability_past_the_threshold(prob: float, signal: str) -> None:
    assert signal_for(prob, threshold=0.05) == signal
