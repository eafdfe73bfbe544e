"""Labelled feature rows from what the pipeline stored: the feature rows finished runs stored for
a window, each labelled with whether the next session closed higher, read from the bars a
finished run stored. Nothing is re-simulated or re-fetched: a row exists only once the pipeline
has stored both its features and the next session's close (point in time)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import func, select

from marketsense.common.db.models import FeatureSet, RawObject, Run
from marketsense.common.events import ObjectRef
from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA, next_day_up
from marketsense.common.parquet import from_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.common.store.base import ObjectStore

MAX_FILES = 20_000
"""Most stored feature files one table is built from."""
FINISHED_STATES = (RunState.SUCCESS.value, RunState.PARTIAL.value)
"""Runs whose stored files count: a partial run's failed symbols stored none, and the files it
did store are as good as a successful run's."""
BARS_KIND = "bars"
"""Raw object kind of a symbol's daily bars."""
READS_AT_ONCE = 16
"""Stored files read concurrently."""
KEYS = ("symbol", "date", "label")
"""The columns before the features in a labelled table."""


class NoLabelledRows(ValueError):
    """The window has no stored feature row with a realised outcome; the message says why."""


@dataclass(frozen=True)
class LabelledRows:
    """Labelled rows, oldest day first, and the finished runs whose files they came from."""

    table: pd.DataFrame
    """Columns symbol, date, label (0/1) and FEATURE_COLUMNS; one row per symbol and day."""
    run_ids: list[str]
    """Runs whose stored features or bars gave the rows, sorted."""

    @property
    def days(self) -> int:
        """Distinct trading days the rows cover."""
        return int(self.table["date"].nunique())


async def labelled_rows(runtime: Runtime, *, start: dt.date, end: dt.date) -> LabelledRows:
    """One row per symbol and day in `start..end` with stored features and a realised outcome;
    NoLabelledRows says why there is none."""
    features = await _stored_features(runtime, start=start, end=end)
    outcomes = await _outcomes(runtime, sorted(set(features["symbol"])), start=start, end=end)
    table = features.merge(outcomes, on=["symbol", "date"], how="inner")
    if table.empty:
        raise NoLabelledRows(
            f"no stored feature row in {start}..{end} has a realised outcome yet: the next "
            f"session's bars are stored by the next run; try again after it, or choose an "
            f"earlier end"
        )
    table = table.sort_values(["date", "symbol"]).reset_index(drop=True)
    runs = set(table["feature_run"]) | set(table["label_run"])
    return LabelledRows(table=table[[*KEYS, *FEATURE_COLUMNS]], run_ids=sorted(runs))


async def newest_finished_day(runtime: Runtime) -> dt.date | None:
    """The trading day of the newest finished run, or None before any run finished."""
    async with runtime.database.session() as session:
        newest: dt.date | None = await session.scalar(
            select(func.max(Run.as_of)).where(Run.state.in_(FINISHED_STATES))
        )
    return newest


async def _stored_features(runtime: Runtime, *, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Feature rows dated in the window from finished runs; a later run's row of a day wins."""
    async with runtime.database.session() as session:
        stored = list(
            await session.scalars(
                select(FeatureSet)
                .join(Run, Run.id == FeatureSet.run_id)
                .where(
                    Run.state.in_(FINISHED_STATES),
                    FeatureSet.feature_schema == FEATURE_SCHEMA,
                    FeatureSet.as_of >= start,
                    # A backfill's file holds every day from its run's start to its as_of.
                    func.coalesce(Run.start, FeatureSet.as_of) <= end,
                )
                .order_by(FeatureSet.id)
                .limit(MAX_FILES + 1)
            )
        )
    if not stored:
        raise NoLabelledRows(
            f"no finished run stored features ({FEATURE_SCHEMA}) with as_of in {start}..{end}; "
            "run the pipeline over the window first (`marketsense run` or a backfill)"
        )
    if len(stored) > MAX_FILES:
        raise NoLabelledRows(
            f"the window {start}..{end} has over {MAX_FILES} stored feature files; narrow it"
        )
    frames = await _read_all(runtime.store, [row.ref() for row in stored])
    rows = pd.concat(
        [_dated(f).assign(feature_run=r.run_id) for f, r in zip(frames, stored, strict=True)],
        ignore_index=True,
    )
    missing = [c for c in ("symbol", *FEATURE_COLUMNS) if c not in rows.columns]
    if missing:
        raise NoLabelledRows(f"stored features lack the columns {missing}")
    rows = rows[(rows["date"] >= start) & (rows["date"] <= end)]
    return rows.drop_duplicates(["symbol", "date"], keep="last")[
        ["symbol", "date", "feature_run", *FEATURE_COLUMNS]
    ]


async def _outcomes(
    runtime: Runtime, symbols: Sequence[str], *, start: dt.date, end: dt.date
) -> pd.DataFrame:
    """Whether the next session closed above each day's close, from each symbol's stored bars."""
    async with runtime.database.session() as session:
        found = await session.execute(
            select(RawObject.id, RawObject.symbol, RawObject.as_of)
            .join(Run, Run.id == RawObject.run_id)
            .where(
                Run.state.in_(FINISHED_STATES),
                RawObject.kind == BARS_KIND,
                RawObject.symbol.in_(symbols),
                RawObject.as_of > start,
            )
        )
        chosen = bars_covering([(i, s, d) for i, s, d in found], end=end)
        stored = list(await session.scalars(select(RawObject).where(RawObject.id.in_(chosen))))
    frames = await _read_all(runtime.store, [row.ref() for row in stored])
    labels = [
        next_day_up(_dated(bars))
        .dropna()
        .rename("label")
        .rename_axis("date")
        .reset_index()
        .assign(symbol=row.symbol, label_run=row.run_id)
        for row, bars in zip(stored, frames, strict=True)
    ]
    if not labels:
        return pd.DataFrame(columns=["symbol", "date", "label", "label_run"], dtype=object)
    table = pd.concat(labels, ignore_index=True)
    return table.assign(label=table["label"].astype(int))


def bars_covering(found: list[tuple[int, str, dt.date]], *, end: dt.date) -> list[int]:
    """Per symbol, the stored bars that cover the window and the session after it: the first
    run after `end` (its bars hold that session and a warm-up history longer than any window),
    else the latest run; the newest row of a day."""
    by_symbol: dict[str, list[tuple[dt.date, int]]] = defaultdict(list)
    for row_id, symbol, as_of in found:
        by_symbol[symbol].append((as_of, row_id))
    chosen = []
    for rows in by_symbol.values():
        after = [row for row in rows if row[0] > end]
        if after:
            first_day = min(as_of for as_of, _ in after)
            chosen.append(max(row_id for as_of, row_id in after if as_of == first_day))
        else:
            chosen.append(max(rows)[1])
    return chosen


async def _read_all(store: ObjectStore, refs: Sequence[ObjectRef]) -> list[pd.DataFrame]:
    """Stored Parquet files as frames, a few at a time."""
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def one(ref: ObjectRef) -> pd.DataFrame:
        async with gate:
            data = await store.get(ref)
        return await asyncio.to_thread(from_parquet_bytes, data)

    return list(await asyncio.gather(*(one(ref) for ref in refs)))


def _dated(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its `date` column as calendar dates, whatever type it was stored as."""
    return frame.assign(date=pd.to_datetime(frame["date"]).dt.date)
