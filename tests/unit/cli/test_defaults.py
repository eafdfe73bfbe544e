"""The day commands default to: the last weekday before today, in UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from marketsense.cli.defaults import last_weekday


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 11, 24), dt.date(2026, 11, 23)),  # Tuesday -> Monday
        (dt.date(2026, 11, 23), dt.date(2026, 11, 20)),  # Monday -> the Friday before
        (dt.date(2026, 11, 22), dt.date(2026, 11, 20)),  # Sunday -> Friday
        (dt.date(2026, 11, 21), dt.date(2026, 11, 20)),  # Saturday -> Friday
        (dt.date(2026, 11, 27), dt.date(2026, 11, 26)),  # Friday -> Thursday
        (dt.date(2027, 1, 1), dt.date(2026, 12, 31)),  # across a year end
        (dt.date(2028, 3, 1), dt.date(2028, 2, 29)),  # a leap day is a weekday like any other
    ],
)
def test_the_last_weekday_is_the_weekday_before_today_skipping_weekends(
    today: dt.date, expected: dt.date
) -> None:
    assert last_weekday(today) == expected


def test_without_a_day_it_counts_from_today_in_utc() -> None:
    before = dt.datetime.now(dt.UTC).date()
    found = last_weekday()
    after = dt.datetime.now(dt.UTC).date()

    assert found.weekday() < 5
    assert found in {last_weekday(before), last_weekday(after)}
    assert 1 <= (before - found).days <= 3
