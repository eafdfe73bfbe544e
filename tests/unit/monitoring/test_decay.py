"""The decay policy's placeholder (replaced with the policy's own change): it fires when the
strategy's Sharpe falls below the ratio times the benchmark's, once per cooldown."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd

from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.decay import DecayPolicy, judge, replay

POLICY = DecayPolicy.from_settings(MonitoringSettings())


def daily(strategy_mean: float, *, days: int = 40) -> pd.DataFrame:
    """Daily figures whose strategy earns `strategy_mean` a day, with noise, against a
    benchmark that earns a little."""
    rng = np.random.default_rng(4)
    index = pd.Index([dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(days)], name="day")
    return pd.DataFrame(
        {
            "strategy_return": strategy_mean + rng.normal(0, 0.01, days),
            "benchmark_return": 0.0005 + rng.normal(0, 0.01, days),
        },
        index=index,
    )


def test_a_losing_strategy_is_found_at_the_last_day_and_a_winning_one_is_not() -> None:
    losing = judge(daily(-0.004), POLICY, last_alert_day=None)

    assert losing is not None
    assert losing.day == losing.window_end == daily(-0.004).index[-1]
    assert losing.observations == POLICY.window
    assert judge(daily(0.004), POLICY, last_alert_day=None) is None


def test_one_decay_alerts_once_per_cooldown() -> None:
    found = replay(daily(-0.004, days=60), POLICY)

    assert len(found) >= 2
    days = list(daily(-0.004, days=60).index)
    gaps = [days.index(b.day) - days.index(a.day) for a, b in itertools.pairwise(found)]
    assert all(gap > POLICY.cooldown for gap in gaps)
