"""The training set of a retrain: the labelled rows the pipeline stored from the window's start
to the newest labelled day, bounded, stored for audit and fingerprinted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from marketsense.common.events import ObjectRef
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.models.labelled_runs import NoLabelledRows, labelled_rows, newest_finished_day


@dataclass(frozen=True)
class TrainingSet:
    """Rows a challenger is trained on, where they are stored, and what they came from."""

    table: pd.DataFrame
    ref: ObjectRef
    days: int
    runs: list[str]

    @property
    def rows(self) -> int:
        """Labelled rows in the set."""
        return len(self.table)


@dataclass(frozen=True)
class TooFewDays:
    """The window does not hold enough labelled days yet; `reason` says how many it has."""

    reason: str
    days: int


def newest_days(table: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """The newest whole days of `table` that fit in `max_rows` rows (at least the newest day)."""
    if len(table) <= max_rows:
        return table
    per_day = table.groupby("date").size().sort_index(ascending=False)
    kept = per_day.cumsum() <= max_rows
    kept.iloc[0] = True
    return table[table["date"].isin(per_day.index[kept])].reset_index(drop=True)


def set_key(retrain_id: str) -> str:
    """Object store key of a retrain's training set."""
    return f"retraining/{retrain_id}/training_set.parquet"


async def build_training_set(
    runtime: Runtime, *, retrain_id: str, start: dt.date, min_days: int, max_rows: int
) -> TrainingSet | TooFewDays:
    """The stored, labelled rows from `start` to the newest finished run's day, when they span
    `min_days` trading days; else what is missing."""
    newest = await newest_finished_day(runtime)
    if newest is None or newest < start:
        return TooFewDays(f"no finished run since the window's start {start} yet", 0)
    try:
        found = await labelled_rows(runtime, start=start, end=newest)
    except NoLabelledRows as exc:
        return TooFewDays(str(exc), 0)
    if found.days < min_days:
        return TooFewDays(
            f"{found.days} labelled trading days from {start} to {newest}, fewer than "
            f"retraining_min_days ({min_days}); waiting for more finished runs",
            found.days,
        )
    table = newest_days(found.table, max_rows)
    if len(table) < len(found.table):
        # The runs behind the kept days alone: read them again from the first kept day.
        found = await labelled_rows(runtime, start=min(table["date"]), end=newest)
        table = newest_days(found.table, max_rows)
    ref = await runtime.store.put(set_key(retrain_id), to_parquet_bytes(table))
    days = int(table["date"].nunique())
    return TrainingSet(table=table, ref=ref, days=days, runs=found.run_ids)
