"""Processing logic: turn one symbol's raw bars into its feature row for the run's day."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from sqlalchemy import select

from marketsense.common.db.models import FeatureSet
from marketsense.common.db.outbox import add_event
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import Envelope, FeaturesReady, RawDataReady
from marketsense.common.features import BAR_COLUMNS, FEATURE_SCHEMA, MIN_BARS, compute_features
from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import Claim, claim_task, complete_task

log = logging.getLogger(__name__)


def features_key(*, as_of: dt.date, run_id: str, symbol: str) -> str:
    """Deterministic object key of a symbol's feature file for a run."""
    return f"features/{as_of.isoformat()}/{run_id}/{symbol}.parquet"


def feature_row(bars: pd.DataFrame, *, as_of: dt.date, symbol: str) -> pd.DataFrame:
    """The one feature row for `as_of`, with symbol and date columns; raise if it cannot exist."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise NonRetryableError(f"bars for {symbol} lack columns {missing}")
    if len(bars) < MIN_BARS:
        raise NonRetryableError(f"{symbol} has {len(bars)} bars; features need {MIN_BARS}")
    features = compute_features(bars)
    if features.index[-1] != as_of:
        raise NonRetryableError(f"the latest bar for {symbol} is {features.index[-1]}, not {as_of}")
    row = features.iloc[[-1]].reset_index()
    row.insert(0, "symbol", symbol)
    return row


async def process_symbol(
    *, runtime: Runtime, run_id: str, symbol: str, event: RawDataReady
) -> None:
    """Compute, store and announce one symbol's features for a run; idempotent."""
    if await claim_task(runtime, run_id=run_id, symbol=symbol, stage=Stage.PROCESS) != Claim.WORK:
        return
    bars = from_parquet_bytes(await runtime.store.get(event.bars))
    row = feature_row(bars, as_of=event.as_of, symbol=symbol)
    ref = await runtime.store.put(
        features_key(as_of=event.as_of, run_id=run_id, symbol=symbol), to_parquet_bytes(row)
    )
    async with runtime.transaction() as session:
        stored = await session.scalar(
            select(FeatureSet).where(
                FeatureSet.run_id == run_id,
                FeatureSet.symbol == symbol,
                FeatureSet.feature_schema == FEATURE_SCHEMA,
            )
        )
        if stored is None:
            stored = FeatureSet(run_id=run_id, symbol=symbol, feature_schema=FEATURE_SCHEMA)
            session.add(stored)
        stored.as_of, stored.uri, stored.sha256, stored.size = (
            event.as_of,
            ref.uri,
            ref.sha256,
            ref.size,
        )
        await complete_task(session, run_id=run_id, symbol=symbol, stage=Stage.PROCESS)
        add_event(
            session,
            Envelope.wrap(
                FeaturesReady(as_of=event.as_of, feature_schema=FEATURE_SCHEMA, features=ref),
                run_id=run_id,
                symbol=symbol,
            ),
            source=runtime.service,
        )
    log.info("processed features")
