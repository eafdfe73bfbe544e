"""Ingestion logic: fetch one symbol's bars and texts, store them, announce them atomically."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

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
    checks: BarChecks | None = None,
) -> None:
    """Fetch, check, store and announce one symbol's data for a run; idempotent.

    The raw rows, the task's SUCCESS with its notes (what cleaning changed and what `checks`
    found) and the RawDataReady event commit together or not at all; if the symbol fails after
    the data came in (an unadjusted split its features would feel, for one), the failed task
    keeps the notes.
    """
    if await claim_task(runtime, run_id=run_id, symbol=symbol, stage=Stage.INGEST) != Claim.WORK:
        return
    data = await source.fetch(symbol, as_of=as_of, days=lookback_days)
    checks = checks or BarChecks()
    notes = [*data.issues, *checks(data.bars, symbol=symbol, as_of=as_of)]
    try:
        checks.refuse_unadjusted_split(data.bars, symbol=symbol)
        await _store_and_announce(
            runtime,
            source=source,
            run_id=run_id,
            symbol=symbol,
            as_of=as_of,
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
    data: SymbolData,
    notes: list[str],
) -> None:
    """Store a symbol's raw data, then record it, complete the task and queue RawDataReady."""
    if data.bars.empty:
        raise NonRetryableError(f"{source.name} has no bars for {symbol} up to {as_of}")
    bars_ref, texts_ref = await asyncio.gather(
        runtime.store.put(
            raw_key(as_of=as_of, run_id=run_id, symbol=symbol, name="bars.parquet"),
            to_parquet_bytes(data.bars),
        ),
        runtime.store.put(
            raw_key(as_of=as_of, run_id=run_id, symbol=symbol, name="texts.parquet"),
            to_parquet_bytes(data.texts),
        ),
    )
    async with runtime.transaction() as session:
        for kind, ref, rows in (
            ("bars", bars_ref, len(data.bars)),
            ("texts", texts_ref, len(data.texts)),
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
                    text_items=len(data.texts),
                ),
                run_id=run_id,
                symbol=symbol,
            ),
            source=runtime.service,
        )


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
