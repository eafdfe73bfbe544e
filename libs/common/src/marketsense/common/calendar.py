"""Exchange calendars: the days an exchange trades, and when each of its sessions closes.

Backed by `exchange_calendars`, which keeps the holiday rules and early closes of every major
exchange up to date. A session is named by its date; closes are UTC instants, so daylight-saving
changes and early closes (the day after Thanksgiving, Christmas Eve) need no special case.
"""

from __future__ import annotations

import datetime as dt
import warnings
from functools import lru_cache
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd

DEFAULT_EXCHANGE = "XNYS"
"""The New York Stock Exchange: the exchange of a symbol unless its universe names another."""

FIRST_DAY = dt.date(1970, 1, 2)
"""Earliest day a calendar answers for (the earliest day a run may take)."""

LAST_DAY = dt.date(2099, 12, 31)
"""Latest day a calendar answers for."""


class UnknownExchange(ValueError):
    """The name is not an exchange calendar that `exchange_calendars` knows."""


class ExchangeCalendar:
    """Sessions and closes of one exchange between FIRST_DAY and LAST_DAY."""

    def __init__(self, name: str):
        self.name = checked_exchange(name)
        with warnings.catch_warnings():
            # The library reads a time-zone-aware Series' `.values`, which pandas 3 deprecates;
            # the values it reads are UTC either way.
            warnings.simplefilter("ignore", pd.errors.Pandas4Warning)
            calendar = xcals.get_calendar(
                name, start=FIRST_DAY.isoformat(), end=LAST_DAY.isoformat()
            )
        self._holidays = calendar.regular_holidays
        self.timezone = str(calendar.tz)
        """The exchange's time zone, such as America/New_York."""
        sessions = calendar.sessions
        self._sessions = sessions.to_numpy().astype("datetime64[D]")
        closes = calendar.schedule["close"].dt.tz_convert("UTC").dt.tz_localize(None)
        self._closes = closes.to_numpy().astype("datetime64[ns]")
        self._first = max(FIRST_DAY, sessions[0].date())
        self._last = min(LAST_DAY, sessions[-1].date())

    def _check(self, day: dt.date) -> None:
        if not self._first <= day <= self._last:
            raise ValueError(
                f"{day.isoformat()} is outside the {self.name} calendar "
                f"({self._first.isoformat()} to {self._last.isoformat()})"
            )

    def is_session(self, day: dt.date) -> bool:
        """Whether the exchange trades on `day`."""
        self._check(day)
        index = np.searchsorted(self._sessions, np.datetime64(day, "D"))
        return bool(index < len(self._sessions) and self._sessions[index] == np.datetime64(day))

    def next_session(self, day: dt.date) -> dt.date:
        """The first session after `day` (strictly later)."""
        self._check(day)
        index = np.searchsorted(self._sessions, np.datetime64(day, "D"), side="right")
        if index >= len(self._sessions):
            raise ValueError(f"no {self.name} session after {day.isoformat()} in the calendar")
        return _date(self._sessions[index])

    def previous_session(self, day: dt.date) -> dt.date:
        """The last session before `day` (strictly earlier)."""
        self._check(day)
        index = np.searchsorted(self._sessions, np.datetime64(day, "D"), side="left") - 1
        if index < 0:
            raise ValueError(f"no {self.name} session before {day.isoformat()} in the calendar")
        return _date(self._sessions[index])

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Sessions from `start` to `end`, inclusive, oldest first."""
        self._check(start)
        self._check(end)
        low = np.searchsorted(self._sessions, np.datetime64(start, "D"), side="left")
        high = np.searchsorted(self._sessions, np.datetime64(end, "D"), side="right")
        return [_date(day) for day in self._sessions[low:high]]

    def session_mask(self, days: pd.Series) -> pd.Series:
        """For a series of `datetime.date`, whether each is a session (outside the calendar: no)."""
        values = pd.to_datetime(days).to_numpy().astype("datetime64[D]")
        index = np.clip(np.searchsorted(self._sessions, values), 0, len(self._sessions) - 1)
        return pd.Series(self._sessions[index] == values, index=days.index)

    def session_of(self, published_at: pd.Series) -> pd.Series:
        """The session each UTC instant counts for, as `datetime.date`: the first whose close is
        after it. Items published at or after a close, on a weekend or on a holiday count for the
        next session; an instant beyond the calendar gets None."""
        instants = published_at.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        index = np.searchsorted(self._closes, instants.astype("datetime64[ns]"), side="right")
        days = pd.DatetimeIndex(self._sessions[np.minimum(index, len(self._sessions) - 1)]).date
        out = pd.Series(days, index=published_at.index, dtype="object")
        return out.where(index < len(self._sessions), None)

    def local_day(self, instant: dt.datetime) -> dt.date:
        """The date at the exchange when `instant` (time-zone aware) happens."""
        return instant.astimezone(ZoneInfo(self.timezone)).date()

    def last_closed_session(self, instant: dt.datetime) -> dt.date:
        """The latest session whose close is at or before `instant` (time-zone aware)."""
        moment = np.datetime64(instant.astimezone(dt.UTC).replace(tzinfo=None), "ns")
        index = np.searchsorted(self._closes, moment, side="right") - 1
        if index < 0:
            raise ValueError(f"no {self.name} session closed by {instant.isoformat()}")
        return _date(self._sessions[index])

    def closed_because(self, day: dt.date) -> str | None:
        """Why the exchange does not trade on `day`: a weekday name for a weekend, the holiday's
        name when the calendar's rules give one, else None (a session, or an unnamed closure)."""
        if self.is_session(day):
            return None
        if day.weekday() >= 5:
            return day.strftime("%A")
        # Only asked for a day that is not a session, so the rules are evaluated for one day.
        names = self._holidays.holidays(day, day, return_name=True)
        return str(names.iloc[0]) if len(names) else None

    def not_a_session(self, day: dt.date) -> str:
        """A sentence saying `day` is not a session, why when known, and the next session."""
        reason = self.closed_because(day)
        why = f" ({reason})" if reason else ""
        return (
            f"{day.isoformat()} is not a {self.name} trading day{why} — "
            f"the next is {self.next_session(day).isoformat()}"
        )


def _date(day: np.datetime64) -> dt.date:
    """A NumPy day as `datetime.date`."""
    return dt.date.fromisoformat(str(day.astype("datetime64[D]")))


@lru_cache(maxsize=1)
def known_exchanges() -> frozenset[str]:
    """Names of the exchange calendars available."""
    return frozenset(xcals.get_calendar_names(include_aliases=False))


def checked_exchange(name: str) -> str:
    """`name` if it is an exchange calendar; else UnknownExchange saying what to use (for
    settings validators)."""
    if name not in known_exchanges():
        raise UnknownExchange(
            f"unknown exchange {name!r}: use an ISO 10383 MIC such as XNYS, XNAS, XLON"
        )
    return name


@lru_cache(maxsize=16)
def exchange_calendar(name: str = DEFAULT_EXCHANGE) -> ExchangeCalendar:
    """The calendar of an exchange, built once per process (about 0.2 s)."""
    return ExchangeCalendar(name)
