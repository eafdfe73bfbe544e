"""The decay policy's threshold the gauges draw, and sessions counted on the New York calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketsense.common.calendar import exchange_calendar
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.decay import decay_threshold
from marketsense.monitoring.gauge_figures import policy_threshold, sessions_closed_since
from marketsense.monitoring.returns_stats import sharpe_ratio

FRIDAY = dt.date(2026, 11, 20)
"""A session; the next week holds Thanksgiving (Thursday 26th) and an early close (27th)."""


def _utc(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


def test_the_threshold_is_the_decay_policys_from_the_reference_days_benchmark() -> None:
    settings = MonitoringSettings(decay_reference_days=100, decay_min_observations=63)
    rng = np.random.default_rng(3)
    daily = pd.DataFrame(
        {"benchmark_return": np.r_[rng.normal(-0.004, 0.01, 50), rng.normal(0.002, 0.01, 100)]}
    )

    threshold = policy_threshold(daily, settings)

    # Only the last 100 days count: the losing first 50 would pull the benchmark below.
    recent = sharpe_ratio(daily["benchmark_return"].to_numpy()[-100:])
    assert recent is not None
    assert threshold == pytest.approx(decay_threshold(recent, 1.1))
    assert threshold != pytest.approx(
        decay_threshold(sharpe_ratio(daily["benchmark_return"].to_numpy()) or 0.0, 1.1)
    )


def test_a_benchmark_without_a_sharpe_ratio_counts_as_cash() -> None:
    one_day = pd.DataFrame({"benchmark_return": [0.01]})

    assert policy_threshold(one_day, MonitoringSettings()) == 0.0


def test_sessions_are_counted_only_once_their_close_has_passed() -> None:
    # The New York close is 21:00 UTC in November (16:00 EST).
    assert sessions_closed_since(FRIDAY, _utc(FRIDAY, 22)) == 0
    assert sessions_closed_since(FRIDAY, _utc(dt.date(2026, 11, 23), 20, 59)) == 0
    assert sessions_closed_since(FRIDAY, _utc(dt.date(2026, 11, 23), 21)) == 1


def test_weekends_holidays_and_early_closes_follow_the_exchange_calendar() -> None:
    calendar = exchange_calendar()
    # Thanksgiving is no session; the day after closes at 13:00 New York time (18:00 UTC).
    assert not calendar.is_session(dt.date(2026, 11, 26))
    friday_after = dt.date(2026, 11, 27)

    weekend = sessions_closed_since(FRIDAY, _utc(dt.date(2026, 11, 22), 23))
    holiday = sessions_closed_since(FRIDAY, _utc(dt.date(2026, 11, 26), 23))
    early_close = sessions_closed_since(FRIDAY, _utc(friday_after, 18, 30))

    assert weekend == 0
    assert holiday == len(calendar.sessions(dt.date(2026, 11, 23), dt.date(2026, 11, 26)))
    assert early_close == holiday + 1
