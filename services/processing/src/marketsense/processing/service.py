"""Processing logic: turn one symbol's raw bars and texts into its feature row for the run's day."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import numpy as np
import pandas as pd
from sqlalchemy import select

from marketsense.common.db.models import FeatureSet
from marketsense.common.db.outbox import add_event
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.events import Envelope, FeaturesReady, RawDataReady
from marketsense.common.features import BAR_COLUMNS, FEATURE_SCHEMA, MIN_BARS, compute_features
from marketsense.common.metrics import TEXTS_UNSCORED
from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.tasks import Claim, claim_task, complete_task
from marketsense.models.sentiment import SentimentModel
from marketsense.models.slot import ModelSlot
from marketsense.models.text_screen import Screening

log = logging.getLogger(__name__)

SentimentSlot = ModelSlot[SentimentModel]
"""The sentiment model in service."""


def features_key(*, as_of: dt.date, run_id: str, symbol: str) -> str:
    """Deterministic object key of a symbol's feature file for a run."""
    return f"features/{as_of.isoformat()}/{run_id}/{symbol}.parquet"


def feature_row(
    bars: pd.DataFrame,
    *,
    as_of: dt.date,
    symbol: str,
    scored_texts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The one feature row for `as_of`, with symbol and date columns; raise if it cannot exist."""
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise NonRetryableError(f"bars for {symbol} lack columns {missing}")
    if len(bars) < MIN_BARS:
        raise NonRetryableError(f"{symbol} has {len(bars)} bars; features need {MIN_BARS}")
    features = compute_features(bars, scored_texts)
    if features.index[-1] != as_of:
        raise NonRetryableError(f"the latest bar for {symbol} is {features.index[-1]}, not {as_of}")
    row = features.iloc[[-1]].reset_index()
    row.insert(0, "symbol", symbol)
    return row


async def score_day(
    model: SentimentModel,
    texts: pd.DataFrame,
    *,
    as_of: dt.date,
    batch_size: int,
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Sentiment scores (date, score) of the texts that count for `as_of` and that the model can
    judge; why the others were not scored goes to `notes`."""
    day = texts[texts["date"] == as_of] if len(texts) else texts
    if day.empty:
        return pd.DataFrame({"date": [], "score": []})
    # onnxruntime releases the GIL: scoring in a thread keeps the event loop answering.
    scores, screening = await asyncio.to_thread(
        model.judged_scores, day["text"].tolist(), batch_size=batch_size
    )
    judged = record_unscored(screening, notes)
    return pd.DataFrame({"date": day["date"].to_numpy()[judged], "score": scores[judged]})


def record_unscored(screening: Screening, notes: list[str] | None) -> np.ndarray:
    """Count the texts left unscored in the metric and a note; the mask of the scored ones."""
    for reason, count in screening.counts().items():
        TEXTS_UNSCORED.labels(reason=reason.value).inc(count)
    note = screening.note()
    if note is not None and notes is not None:
        notes.append(note)
    return screening.judgeable


async def _nothing() -> None:
    """An awaitable standing in for an object the event does not reference."""


async def process_symbol(
    *,
    runtime: Runtime,
    sentiment: SentimentSlot,
    batch_size: int,
    run_id: str,
    symbol: str,
    event: RawDataReady,
) -> None:
    """Compute, store and announce one symbol's features for a run; idempotent."""
    model = sentiment.current
    if model is None:
        raise RetryableError("no sentiment model is loaded yet")
    if await claim_task(runtime, run_id=run_id, symbol=symbol, stage=Stage.PROCESS) != Claim.WORK:
        return
    bars_bytes, texts_bytes = await asyncio.gather(
        runtime.store.get(event.bars),
        runtime.store.get(event.texts) if event.texts else _nothing(),
    )
    bars = from_parquet_bytes(bars_bytes)
    texts = from_parquet_bytes(texts_bytes) if texts_bytes is not None else None
    notes: list[str] = []
    scored = (
        await score_day(model, texts, as_of=event.as_of, batch_size=batch_size, notes=notes)
        if texts is not None
        else None
    )
    row = feature_row(bars, as_of=event.as_of, symbol=symbol, scored_texts=scored)
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
        stored.as_of = event.as_of
        stored.point_at(ref)
        await complete_task(session, run_id=run_id, symbol=symbol, stage=Stage.PROCESS, notes=notes)
        add_event(
            session,
            Envelope.wrap(
                FeaturesReady(as_of=event.as_of, feature_schema=FEATURE_SCHEMA, features=ref),
                run_id=run_id,
                symbol=symbol,
            ),
            source=runtime.service,
        )
    log.info("processed features (%d texts scored)", 0 if scored is None else len(scored))
