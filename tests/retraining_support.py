"""What the retraining suites share: runs stored as the pipeline stores them (bars by ingestion,
each day's features as processing computes them)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from marketsense.common.db.models import FeatureSet, RawObject, Run, Task
from marketsense.common.features import FEATURE_SCHEMA, MIN_BARS
from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.ingestion.service import ingest_symbol
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.processing.service import feature_rows

LOOKBACK = MIN_BARS
"""Bars before a run's first day, enough for every feature's warm-up."""


async def stored_run(
    runtime: Runtime,
    market: SimulatedMarket,
    *,
    as_of: dt.date,
    symbols: list[str],
    start: dt.date | None = None,
) -> str:
    """A finished run (a backfill from `start`, else daily): ingestion stored each symbol's
    bars, and each symbol's features for the run's days are stored as processing stores them."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        kind = "daily" if start is None else "backfill"
        session.add(
            Run(
                id=run_id,
                as_of=as_of,
                start=start,
                state=RunState.RUNNING,
                symbols=len(symbols),
                kind=kind,
            )
        )
        await session.flush()
        session.add_all(
            Task(run_id=run_id, symbol=s, stage=Stage.INGEST, state=TaskState.PENDING)
            for s in symbols
        )
    for symbol in symbols:
        await ingest_symbol(
            runtime=runtime,
            source=market,
            run_id=run_id,
            symbol=symbol,
            as_of=as_of,
            lookback_days=LOOKBACK,
            start=start,
        )
    async with runtime.transaction() as session:
        bars = await session.scalars(
            select(RawObject).where(RawObject.run_id == run_id, RawObject.kind == "bars")
        )
        for raw in bars:
            frame = from_parquet_bytes(await runtime.store.get(raw.ref()))
            kept = feature_rows(frame, start=start or as_of, as_of=as_of, symbol=raw.symbol)
            ref = await runtime.store.put(
                f"features/{as_of}/{run_id}/{raw.symbol}.parquet", to_parquet_bytes(kept)
            )
            stored = FeatureSet(
                run_id=run_id, symbol=raw.symbol, as_of=as_of, feature_schema=FEATURE_SCHEMA
            )
            stored.point_at(ref)
            session.add(stored)
        run = await session.get(Run, run_id)
        assert run is not None
        run.state = RunState.SUCCESS
    return run_id
