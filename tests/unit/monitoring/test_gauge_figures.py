"""The decay threshold the gauges draw, and sessions counted on the New York calendar."""

from __future__ import annotations

import datetime as dt

import pytest

from marketsense.common.calendar import exchange_calendar
from marketsense.monitoring.gauge_figures import decay_threshold, sessions_closed_since

FRIDAY = dt.date(2026, 11, 20)
"""A session; the next week holds Thanksgiving (Thursday 26th) and an early close (27th)."""


def _utc(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


@pytest.mark.parametrize("benchmark", [0.0, 0.46, 1.8, -0.3, -2.0])
def test_the_threshold_asks_more_than_the_benchmark_whatever_its_sign(benchmark: float) -> None:
    threshold = decay_threshold(benchmark, 1.1)

    assert threshold is not None
    assert threshold >= benchmark
    # The same ratio in both directions: 1.1 times the benchmark, or 1.1 times nearer to 0.
    assert threshold == pytest.approx(benchmark * 1.1 if benchmark >= 0 else benchmark / 1.1)


def test_no_benchmark_sharpe_means_no_threshold() -> None:
    assert decay_threshold(None, 1.1) is None


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
