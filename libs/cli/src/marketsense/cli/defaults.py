"""Defaults the commands share, kept apart so `marketsense --help` starts without heavy imports."""

from __future__ import annotations

import datetime as dt

DEFAULT_TRAINING_SYMBOLS = 24
"""Simulated symbols the baseline predictor trains on."""


def last_weekday(today: dt.date | None = None) -> dt.date:
    """The last weekday before today (UTC)."""
    day = (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day
