"""Defaults the commands share, kept apart so `marketsense --help` starts without heavy imports."""

from __future__ import annotations

import datetime as dt

DEFAULT_TRAINING_SYMBOLS = 24
"""Simulated symbols the baseline predictor trains on."""


def last_session(now: dt.datetime | None = None) -> dt.date:
    """The last session of the New York Stock Exchange that has closed by `now` (default: now)."""
    # The calendar pulls in pandas: imported when a command needs a day, not for `--help`.
    from marketsense.common.calendar import exchange_calendar

    return exchange_calendar().last_closed_session(now or dt.datetime.now(dt.UTC))
