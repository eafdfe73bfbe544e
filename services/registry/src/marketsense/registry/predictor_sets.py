"""A predictor evaluation set built from what the pipeline stored: the labelled feature rows of
finished runs in a window (`marketsense.models.labelled_runs`), bounded for an evaluation set."""

from __future__ import annotations

import datetime as dt

from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.models.evaluation import MAX_SET_ROWS, InvalidEvaluationSet
from marketsense.models.labelled_runs import NoLabelledRows, labelled_rows

MAX_WINDOW_DAYS = 400
"""Longest window, in calendar days, a set is built from: every stored file in it is read."""


async def predictor_set_from_runs(runtime: Runtime, *, start: dt.date, end: dt.date) -> bytes:
    """The Parquet bytes of the set: one row per symbol and day in `start..end` with stored
    features and a realised outcome; InvalidEvaluationSet says why there is none."""
    if end < start:
        raise InvalidEvaluationSet(f"start ({start}) must be on or before end ({end})")
    if (end - start).days > MAX_WINDOW_DAYS:
        raise InvalidEvaluationSet(
            f"the window {start}..{end} is over {MAX_WINDOW_DAYS} days; narrow start and end"
        )
    try:
        rows = await labelled_rows(runtime, start=start, end=end)
    except NoLabelledRows as exc:
        raise InvalidEvaluationSet(str(exc)) from exc
    if len(rows.table) > MAX_SET_ROWS:
        raise InvalidEvaluationSet(
            f"the window {start}..{end} gives {len(rows.table)} rows, over {MAX_SET_ROWS}; "
            "narrow it"
        )
    return to_parquet_bytes(rows.table)
