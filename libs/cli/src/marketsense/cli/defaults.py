"""Defaults the commands share, kept apart so `marketsense --help` starts without heavy imports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

DEFAULT_TRAINING_SYMBOLS = 24
"""Simulated symbols the baseline predictor trains on."""

HOLDOUT_SUFFIX = "-holdout.parquet"
"""Ending of the file beside a predictor's folder that holds its holdout rows."""


def holdout_set_path(directory: Path) -> Path:
    """Where the baseline's holdout rows, a predictor evaluation set, are written: beside the
    predictor's folder, not in it, so they are no part of the bundle a push uploads."""
    return directory.with_name(directory.name + HOLDOUT_SUFFIX)


def last_session(now: dt.datetime | None = None) -> dt.date:
    """The last session of the New York Stock Exchange that has closed by `now` (default: now)."""
    # The calendar pulls in pandas: imported when a command needs a day, not for `--help`.
    from marketsense.common.calendar import exchange_calendar

    return exchange_calendar().last_closed_session(now or dt.datetime.now(dt.UTC))
