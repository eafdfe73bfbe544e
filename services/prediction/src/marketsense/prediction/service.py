"""Prediction logic: score one symbol's processed features with the loaded predictor."""

from __future__ import annotations

import logging

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import FeatureSet, Prediction
from marketsense.common.db.outbox import add_event
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.events import Envelope, FeaturesReady, ObjectRef, PredictionsReady
from marketsense.common.parquet import from_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.slot import ModelSlot
from marketsense.common.states import Stage, TaskState
from marketsense.common.tasks import Claim, claim_task, complete_task, task_state
from marketsense.prediction.model import OnnxPredictor

log = logging.getLogger(__name__)


PredictorHolder = ModelSlot[OnnxPredictor]
"""The predictor in service."""


def signal_for(prob_up: float, *, threshold: float) -> str:
    """Turn a probability into a trading signal."""
    if prob_up >= 0.5 + threshold:
        return "up"
    if prob_up <= 0.5 - threshold:
        return "down"
    return "flat"


async def processed_features(
    session: AsyncSession, *, run_id: str, symbol: str, feature_schema: str
) -> FeatureSet:
    """The features processing marked done for this run, or raise: never another run's data."""
    if await task_state(session, run_id=run_id, symbol=symbol, stage=Stage.PROCESS) != (
        TaskState.SUCCESS
    ):
        raise NonRetryableError(f"features for {symbol} are not marked processed for run {run_id}")
    stored = await session.scalar(
        select(FeatureSet).where(
            FeatureSet.run_id == run_id,
            FeatureSet.symbol == symbol,
            FeatureSet.feature_schema == feature_schema,
        )
    )
    if stored is None:
        raise NonRetryableError(f"no {feature_schema} features recorded for {symbol} in {run_id}")
    return stored


async def predict_symbol(
    *,
    runtime: Runtime,
    holder: PredictorHolder,
    threshold: float,
    run_id: str,
    symbol: str,
    event: FeaturesReady,
) -> None:
    """Score, store and announce one symbol's prediction for a run; idempotent."""
    predictor = holder.current
    if predictor is None:
        raise RetryableError("no predictor is loaded yet")
    manifest = predictor.manifest
    if event.feature_schema != manifest.feature_schema:
        raise NonRetryableError(
            f"features follow {event.feature_schema}; "
            f"{manifest.name} reads {manifest.feature_schema}"
        )
    if await claim_task(runtime, run_id=run_id, symbol=symbol, stage=Stage.PREDICT) != Claim.WORK:
        return
    async with runtime.database.session() as session:
        stored = await processed_features(
            session, run_id=run_id, symbol=symbol, feature_schema=event.feature_schema
        )
    ref = ObjectRef(uri=stored.uri, sha256=stored.sha256, size=stored.size)
    row = from_parquet_bytes(await runtime.store.get(ref))
    missing = [c for c in manifest.features if c not in row.columns]
    if missing:
        raise NonRetryableError(f"feature file for {symbol} lacks {missing}")
    prob_up = float(predictor.predict_up(row[manifest.features].to_numpy(np.float32))[0])
    async with runtime.transaction() as session:
        prediction = await session.scalar(
            select(Prediction).where(
                Prediction.run_id == run_id,
                Prediction.symbol == symbol,
                Prediction.horizon_days == manifest.horizon_days,
            )
        )
        if prediction is None:
            prediction = Prediction(
                run_id=run_id, symbol=symbol, horizon_days=manifest.horizon_days
            )
            session.add(prediction)
        prediction.as_of = event.as_of
        prediction.prob_up = prob_up
        prediction.signal = signal_for(prob_up, threshold=threshold)
        prediction.model_name = manifest.name
        prediction.model_version = manifest.version
        await session.flush()
        await complete_task(session, run_id=run_id, symbol=symbol, stage=Stage.PREDICT)
        add_event(
            session,
            Envelope.wrap(
                PredictionsReady(
                    as_of=event.as_of,
                    prediction_id=prediction.id,
                    model_name=manifest.name,
                    model_version=manifest.version,
                ),
                run_id=run_id,
                symbol=symbol,
            ),
            source=runtime.service,
        )
    log.info("predicted prob_up=%.3f", prob_up)


async def latest_prediction(*, session: AsyncSession, symbol: str) -> Prediction | None:
    """The most recent prediction for a symbol."""
    return await session.scalar(
        select(Prediction)
        .where(Prediction.symbol == symbol)
        .order_by(Prediction.as_of.desc(), Prediction.created_at.desc(), Prediction.id.desc())
        .limit(1)
    )
