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
