"""The day commands default to: the last New York session that has closed."""

from __future__ import annotations

import datetime as dt

import pytest

from marketsense.cli.defaults import last_session


def _utc(day: str, time: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}+00:00")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (_utc("2026-11-24", "15:00"), dt.date(2026, 11, 23)),  # Tuesday, open -> Monday
        (_utc("2026-11-24", "21:00"), dt.date(2026, 11, 24)),  # Tuesday at the close -> Tuesday
        (_utc("2026-11-23", "12:00"), dt.date(2026, 11, 20)),  # Monday morning -> the Friday
        (_utc("2026-11-22", "12:00"), dt.date(2026, 11, 20)),  # Sunday -> Friday
        (_utc("2026-11-27", "12:00"), dt.date(2026, 11, 25)),  # the day after Thanksgiving
        (_utc("2026-11-27", "18:00"), dt.date(2026, 11, 27)),  # ... after its 13:00 early close
        (_utc("2027-01-01", "23:00"), dt.date(2026, 12, 31)),  # New Year's Day is a holiday
        (_utc("2028-03-01", "12:00"), dt.date(2028, 2, 29)),  # a leap day is a session
    ],
)
def test_the_last_session_is_the_latest_one_closed_skipping_weekends_and_holidays(
    now: dt.datetime, expected: dt.date
) -> None:
    assert last_session(now) == expected


def test_without_a_time_it_counts_from_now() -> None:
    before = dt.datetime.now(dt.UTC)
    found = last_session()
    after = dt.datetime.now(dt.UTC)

    assert found.weekday() < 5
    assert found in {last_session(before), last_session(after)}
    assert 0 <= (after.date() - found).days <= 5
