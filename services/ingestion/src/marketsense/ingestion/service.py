"""Ingestion logic: fetch one symbol's bars, store them, announce them as the task succeeds."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import select

from marketsense.common.db.models import RawObject
from marketsense.common.db.outbox import add_event
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import Envelope, RawDataReady
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import Claim, claim_task, complete_task
from marketsense.ingestion.source import BarSource

log = logging.getLogger(__name__)


def raw_key(*, as_of: dt.date, run_id: str, symbol: str, name: str) -> str:
    """Deterministic object key of a raw file, so a rerun overwrites instead of duplicating."""
    return f"raw/{as_of.isoformat()}/{run_id}/{symbol}/{name}"


async def ingest_symbol(
    *,
    runtime: Runtime,
    source: BarSource,
    run_id: str,
    symbol: str,
    as_of: dt.date,
    lookback_days: int,
) -> None:
    """Fetch, store and announce one symbol's bars for a run; idempotent."""
    if await claim_task(runtime, run_id=run_id, symbol=symbol, stage=Stage.INGEST) != Claim.WORK:
        return
    bars = await asyncio.to_thread(source.daily_bars, symbol, as_of=as_of, days=lookback_days)
    if bars.empty:
        raise NonRetryableError(f"the source has no bars for {symbol} up to {as_of}")
    ref = await runtime.store.put(
        raw_key(as_of=as_of, run_id=run_id, symbol=symbol, name="bars.parquet"),
        to_parquet_bytes(bars),
    )
    async with runtime.transaction() as session:
        row = await session.scalar(
            select(RawObject).where(
                RawObject.run_id == run_id, RawObject.symbol == symbol, RawObject.kind == "bars"
            )
        )
        if row is None:
            row = RawObject(run_id=run_id, symbol=symbol, kind="bars")
            session.add(row)
        row.as_of, row.uri, row.sha256, row.size, row.rows = (
            as_of,
            ref.uri,
            ref.sha256,
            ref.size,
            len(bars),
        )
        await complete_task(session, run_id=run_id, symbol=symbol, stage=Stage.INGEST)
        add_event(
            session,
            Envelope.wrap(
                RawDataReady(as_of=as_of, bars=ref, rows=len(bars)), run_id=run_id, symbol=symbol
            ),
            source=runtime.service,
        )
    log.info("ingested %d bars", len(bars))
