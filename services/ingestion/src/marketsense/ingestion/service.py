"""Ingestion logic: fetch one symbol's bars and texts, store them, announce them atomically.

A daily run (no `start`) fetches `lookback_days` bars ending at `as_of`; a backfill fetches
`lookback_days` sessions before `start` and every session from `start` to `as_of`, once. Either
keeps only the texts of the days that get features: the lookback's bars warm the averages up, its
texts would be stored and never read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import replace

import pandas as pd
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import RawObject
from marketsense.common.db.outbox import add_event
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import Envelope, ObjectRef, RawDataReady
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import Claim, claim_task, complete_task, keep_notes
from marketsense.ingestion.sources.base import Source, SymbolData
from marketsense.ingestion.sources.checks import BarChecks

log = logging.getLogger(__name__)


def raw_key(*, as_of: dt.date, run_id: str, symbol: str, name: str) -> str:
    """Deterministic object key of a raw file, so a rerun overwrites instead of duplicating."""
    return f"raw/{as_of.isoformat()}/{run_id}/{symbol}/{name}"


async def ingest_symbol(
    *,
    runtime: Runtime,
    source: Source,
    run_id: str,
    symbol: str,
    as_of: dt.date,
    lookback_days: int,
    start: dt.date | None = None,
    checks: BarChecks | None = None,
) -> None:
    """Fetch, check, store and announce one symbol's data for a run (a backfill when `start` is
    set); idempotent.

    The raw rows, the task's SUCCESS with its notes (what cleaning changed and what `checks`
    found) and the RawDataReady event commit together or not at all; if the symbol fails after
    the data came in (an unadjusted split its features would feel, for one), the failed task
    keeps the notes.
    """
    if await claim_task(runtime, run_id=run_id, symbol=symbol, stage=Stage.INGEST) != Claim.WORK:
        return
    checks = checks or BarChecks()
    days = fetch_days(start=start, as_of=as_of, lookback_days=lookback_days, checks=checks)
    fetched = await source.fetch(symbol, as_of=as_of, days=days)
    data = replace(fetched, texts=texts_needed(fetched.texts, start=start or as_of, as_of=as_of))
    notes = [*data.issues, *checks(data.bars, symbol=symbol, as_of=as_of)]
    try:
        if start is None:
            # A backfill's history may hold a split anywhere: its note says so, and failing would
            # throw away the whole range.
            checks.refuse_unadjusted_split(data.bars, symbol=symbol)
        await _store_and_announce(
            runtime,
            source=source,
            run_id=run_id,
            symbol=symbol,
            as_of=as_of,
            start=start,
            data=data,
            notes=notes,
        )
    except Exception as exc:
        keep_notes(exc, notes)
        raise
    log.info("ingested %d bars and %d texts from %s", len(data.bars), len(data.texts), source.name)


async def _store_and_announce(
    runtime: Runtime,
    *,
    source: Source,
    run_id: str,
    symbol: str,
    as_of: dt.date,
    start: dt.date | None,
    data: SymbolData,
    notes: list[str],
) -> None:
    """Store a symbol's raw data, then record it, complete the task and queue RawDataReady."""
    if data.bars.empty:
        raise NonRetryableError(f"{source.name} has no bars for {symbol} up to {as_of}")
    texts = data.texts
    bars_ref, texts_ref = await asyncio.gather(
        runtime.store.put(
            raw_key(as_of=as_of, run_id=run_id, symbol=symbol, name="bars.parquet"),
            to_parquet_bytes(data.bars),
        ),
        runtime.store.put(
            raw_key(as_of=as_of, run_id=run_id, symbol=symbol, name="texts.parquet"),
            to_parquet_bytes(texts),
        ),
    )
    async with runtime.transaction() as session:
        for kind, ref, rows in (
            ("bars", bars_ref, len(data.bars)),
            ("texts", texts_ref, len(texts)),
        ):
            await _record(
                session, run_id=run_id, symbol=symbol, as_of=as_of, kind=kind, ref=ref, rows=rows
            )
        await complete_task(session, run_id=run_id, symbol=symbol, stage=Stage.INGEST, notes=notes)
        add_event(
            session,
            Envelope.wrap(
                RawDataReady(
                    as_of=as_of,
                    bars=bars_ref,
                    rows=len(data.bars),
                    texts=texts_ref,
                    text_items=len(texts),
                    start=start,
                ),
                run_id=run_id,
                symbol=symbol,
            ),
            source=runtime.service,
        )


def fetch_days(
    *, start: dt.date | None, as_of: dt.date, lookback_days: int, checks: BarChecks
) -> int:
    """Trading days of bars to fetch: the lookback alone for a daily run; for a backfill, the
    lookback before `start` plus every session from `start` to `as_of`."""
    if start is None:
        return lookback_days
    if start > as_of:
        raise NonRetryableError(
            f"a backfill cannot start on {start} after its last day {as_of}: swap them"
        )
    try:
        sessions = checks.calendar.sessions(start, as_of)
    except ValueError as exc:
        raise NonRetryableError(f"cannot backfill {start} to {as_of}: {exc}") from exc
    return lookback_days + len(sessions)


def texts_needed(texts: pd.DataFrame, *, start: dt.date, as_of: dt.date) -> pd.DataFrame:
    """The texts that count for the days from `start` to `as_of`, the only ones given features."""
    if texts.empty:
        return texts
    within = (texts["date"] >= start) & (texts["date"] <= as_of)
    return texts[within].reset_index(drop=True)


async def _record(
    session: AsyncSession,
    *,
    run_id: str,
    symbol: str,
    as_of: dt.date,
    kind: str,
    ref: ObjectRef,
    rows: int,
) -> None:
    """Insert or update the raw-object row of one (run, symbol, kind)."""
    row = await session.scalar(
        select(RawObject).where(
            RawObject.run_id == run_id, RawObject.symbol == symbol, RawObject.kind == kind
        )
    )
    if row is None:
        row = RawObject(run_id=run_id, symbol=symbol, kind=kind)
        session.add(row)
    row.as_of, row.rows = as_of, rows
    row.point_at(ref)
