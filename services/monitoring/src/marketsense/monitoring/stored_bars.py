"""Reads of the daily bars ingestion stored: closes of files a few at a time, by day."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from marketsense.common.events import ObjectRef
from marketsense.common.store.base import ObjectStore

BARS_KIND = "bars"
"""Raw object kind of a symbol's daily bars."""
READS_AT_ONCE = 16
"""Stored files read concurrently."""


async def read_closes(store: ObjectStore, refs: Sequence[ObjectRef]) -> list[pd.DataFrame]:
    """The `date` and `close` columns of stored bars files, in the order of `refs`, a few read
    at a time."""
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def one(ref: ObjectRef) -> pd.DataFrame:
        async with gate:
            data = await store.get(ref)
        return await asyncio.to_thread(_date_and_close, data)

    return list(await asyncio.gather(*(one(ref) for ref in refs)))


def _date_and_close(data: bytes) -> pd.DataFrame:
    """Only the columns outcomes need: the other four are most of a bars file."""
    frame: pd.DataFrame = (
        pq.ParquetFile(pa.BufferReader(data)).read(columns=["date", "close"]).to_pandas()
    )
    return frame


def closes_of(bars: pd.DataFrame, *, until: dt.date) -> pd.Series:
    """Closes by trading day (ascending, each day once, the last row of a day kept), only of days
    on or before `until`: what a run for `until` could have known. A missing close stays NaN, so
    the positions of the sessions after it do not shift."""
    if bars.empty:
        return pd.Series([], index=pd.Index([], name="date"), dtype=float, name="close")
    days = pd.to_datetime(bars["date"]).dt.date
    closes = pd.Series(
        pd.to_numeric(bars["close"], errors="coerce").to_numpy(dtype=float),
        index=pd.Index(days, name="date"),
        name="close",
    )
    closes = closes[closes.index <= until]
    closes = closes[~closes.index.duplicated(keep="last")]
    return closes.sort_index()
