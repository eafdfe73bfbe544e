"""Exchange calendars: sessions, holidays, early closes and the session an instant counts for."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from marketsense.common.calendar import UnknownExchange, exchange_calendar

THANKSGIVING_2008 = dt.date(2008, 11, 27)


def test_a_holiday_is_no_session_and_names_the_next() -> None:
    calendar = exchange_calendar("XNYS")
    assert not calendar.is_session(THANKSGIVING_2008)
    assert calendar.next_session(THANKSGIVING_2008) == dt.date(2008, 11, 28)
    assert calendar.previous_session(dt.date(2008, 11, 28)) == dt.date(2008, 11, 26)
    assert calendar.sessions(dt.date(2008, 11, 25), dt.date(2008, 12, 1)) == [
        dt.date(2008, 11, 25),
        dt.date(2008, 11, 26),
        dt.date(2008, 11, 28),
        dt.date(2008, 12, 1),
    ]


def test_an_instant_counts_for_the_first_session_closing_after_it() -> None:
    calendar = exchange_calendar()
    published = pd.Series(
        pd.to_datetime(
            [
                "2008-11-26T20:59:00Z",  # a minute before the close (EST)
                "2008-11-26T21:00:00Z",  # at the close: the next session, over the holiday
                "2008-11-27T15:00:00Z",  # on the holiday
                "2008-11-28T17:59:00Z",  # before the 13:00 early close
                "2008-11-28T18:00:00Z",  # at the early close: over the weekend
                "2024-07-01T19:59:00Z",  # before the close (EDT)
                "2024-07-01T20:00:00Z",
            ]
        )
    )
    assert calendar.session_of(published).tolist() == [
        dt.date(2008, 11, 26),
        dt.date(2008, 11, 28),
        dt.date(2008, 11, 28),
        dt.date(2008, 11, 28),
        dt.date(2008, 12, 1),
        dt.date(2024, 7, 1),
        dt.date(2024, 7, 2),
    ]


def test_days_outside_the_calendar_are_refused_or_marked() -> None:
    calendar = exchange_calendar()
    with pytest.raises(ValueError, match="outside the XNYS calendar"):
        calendar.is_session(dt.date(1960, 1, 4))
    mask = calendar.session_mask(pd.Series([THANKSGIVING_2008, dt.date(2008, 11, 28)]))
    assert mask.tolist() == [False, True]


def test_an_unknown_exchange_names_what_to_use() -> None:
    with pytest.raises(UnknownExchange, match="MIC"):
        exchange_calendar("NOPE")


@pytest.mark.parametrize(
    ("day", "why", "following"),
    [
        (THANKSGIVING_2008, " (Thanksgiving)", "2008-11-28"),
        (dt.date(2026, 11, 21), " (Saturday)", "2026-11-23"),
        (dt.date(2026, 12, 25), " (Christmas)", "2026-12-28"),
        (dt.date(2012, 10, 29), "", "2012-10-31"),  # a storm: a closure without a named rule
    ],
)
def test_a_day_without_a_session_is_explained_with_the_next_session(
    day: dt.date, why: str, following: str
) -> None:
    calendar = exchange_calendar("XNYS")
    assert calendar.not_a_session(day) == (
        f"{day.isoformat()} is not a XNYS trading day{why} — the next is {following}"
    )
    assert calendar.closed_because(dt.date(2008, 11, 28)) is None


def test_the_exchange_day_of_an_instant_is_its_local_date() -> None:
    calendar = exchange_calendar("XNYS")
    # 01:30 UTC on a Saturday is Friday evening in New York, in winter and in summer.
    assert calendar.local_day(dt.datetime(2026, 11, 21, 1, 30, tzinfo=dt.UTC)) == dt.date(
        2026, 11, 20
    )
    assert calendar.local_day(dt.datetime(2026, 7, 11, 3, 59, tzinfo=dt.UTC)) == dt.date(
        2026, 7, 10
    )
    assert calendar.local_day(dt.datetime(2026, 7, 11, 4, 0, tzinfo=dt.UTC)) == dt.date(2026, 7, 11)


def test_the_last_closed_session_changes_at_the_close_early_ones_included() -> None:
    calendar = exchange_calendar("XNYS")
    at = dt.datetime
    assert calendar.last_closed_session(at(2026, 11, 20, 20, 59, tzinfo=dt.UTC)) == dt.date(
        2026, 11, 19
    )
    assert calendar.last_closed_session(at(2026, 11, 20, 21, 0, tzinfo=dt.UTC)) == dt.date(
        2026, 11, 20
    )
    # The day after Thanksgiving closes at 13:00 New York (18:00 UTC); the holiday is skipped.
    assert calendar.last_closed_session(at(2008, 11, 28, 17, 59, tzinfo=dt.UTC)) == dt.date(
        2008, 11, 26
    )
    assert calendar.last_closed_session(at(2008, 11, 28, 18, 0, tzinfo=dt.UTC)) == dt.date(
        2008, 11, 28
    )
