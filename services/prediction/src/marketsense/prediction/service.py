"""Prediction logic: score processed features with the served predictor, read predictions back."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, case, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.api_models import CURSOR_INVALID, row_id
from marketsense.common.db.models import FeatureSet, Prediction
from marketsense.common.db.outbox import add_event
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.events import Envelope, FeaturesReady, PredictionsReady
from marketsense.common.parquet import from_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState
from marketsense.common.tasks import Claim, claim_task, complete_task, task_state
from marketsense.models.predictor import OnnxPredictor
from marketsense.models.slot import ModelSlot
from marketsense.prediction.shadow import count_shadow, shadow_rows
from marketsense.prediction.store import PredictionRow, save_predictions

log = logging.getLogger(__name__)


PredictorHolder = ModelSlot[OnnxPredictor]
"""The predictor in service."""


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
    shadow: PredictorHolder | None = None,
) -> None:
    """Score, store and announce one symbol's predictions for a run (one per feature row of a
    backfill) in one predictor call and one transaction; idempotent. A loaded `shadow`
    (challenger) scores the same rows, stored in the same transaction under its own version;
    the announcement names the served version's."""
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
    features = from_parquet_bytes(await runtime.store.get(stored.ref()))
    missing = [c for c in manifest.features if c not in features.columns]
    if missing:
        raise NonRetryableError(f"feature file for {symbol} lacks {missing}")
    days = row_days(features, event=event, symbol=symbol)
    probabilities = predictor.predict_up(features[manifest.features].to_numpy(np.float32))
    rows = PredictionRow.each_day(
        manifest, probabilities, run_id=run_id, symbol=symbol, days=days, threshold=threshold
    )
    shadowed = shadow_rows(
        shadow, manifest, features, run_id=run_id, symbol=symbol, days=days, threshold=threshold
    )
    async with runtime.transaction() as session:
        # Scoring the same run again with the same version replaces its rows; what an earlier
        # version said about this run stays.
        await save_predictions(session, [*rows, *shadowed], replace=True)
        prediction_id = await session.scalar(
            select(Prediction.id).where(
                Prediction.run_id == run_id,
                Prediction.symbol == symbol,
                Prediction.as_of == event.as_of,
                Prediction.horizon_days == manifest.horizon_days,
                Prediction.model_name == manifest.name,
                Prediction.model_version == manifest.version,
            )
        )
        if prediction_id is None:  # the last feature row is for as_of, so it was just written
            raise NonRetryableError(f"no prediction for {symbol} on {event.as_of} was stored")
        await complete_task(session, run_id=run_id, symbol=symbol, stage=Stage.PREDICT)
        add_event(
            session,
            Envelope.wrap(
                PredictionsReady(
                    as_of=event.as_of,
                    prediction_id=prediction_id,
                    model_name=manifest.name,
                    model_version=manifest.version,
                    start=event.start,
                    rows=len(rows),
                ),
                run_id=run_id,
                symbol=symbol,
            ),
            source=runtime.service,
        )
    count_shadow(shadowed, service=runtime.service)
    log.info("predicted %d days, prob_up=%.3f on the last", len(rows), rows[-1].prob_up)


def row_days(features: pd.DataFrame, *, event: FeaturesReady, symbol: str) -> list[dt.date]:
    """The day each feature row is for: `as_of` for a daily run's single row; for a backfill,
    the rows' own dates, which must lie from `start` to `as_of` and end at `as_of`."""
    if event.start is None:
        if len(features) != 1:
            raise NonRetryableError(
                f"feature file for {symbol} has {len(features)} rows; a daily run's has one"
            )
        return [event.as_of]
    if "date" not in features.columns:
        raise NonRetryableError(f"feature file for {symbol} lacks the date of each row")
    days: list[dt.date] = list(features["date"])
    if not days or days[-1] != event.as_of or min(days) < event.start or len(set(days)) < len(days):
        raise NonRetryableError(
            f"feature rows for {symbol} are not one per day from {event.start} to {event.as_of}"
        )
    return days


async def latest_prediction(
    *, session: AsyncSession, symbol: str, preferred: tuple[str, str] | None = None
) -> Prediction | None:
    """A symbol's prediction for its latest day: by the `preferred` (name, version) if it made
    one that day, else the newest by any version."""
    query = select(Prediction).where(Prediction.symbol == symbol)
    order: list[ColumnElement[Any]] = [Prediction.as_of.desc()]
    if preferred is not None:
        by_preferred = (Prediction.model_name == preferred[0]) & (
            Prediction.model_version == preferred[1]
        )
        order.append(case((by_preferred, 0), else_=1))
    order += [Prediction.created_at.desc(), Prediction.id.desc()]
    return await session.scalar(query.order_by(*order).limit(1))


async def list_predictions(
    *,
    session: AsyncSession,
    as_of: dt.date | None,
    symbols: Sequence[str] | None,
    after_id: int | None,
    limit: int,
    model_version: str | None = None,
) -> list[Prediction]:
    """Stored predictions in id order, filtered, starting after `after_id` (keyset paging)."""
    query = select(Prediction).order_by(Prediction.id).limit(limit)
    if model_version is not None:
        query = query.where(Prediction.model_version == model_version)
    if as_of is not None:
        query = query.where(Prediction.as_of == as_of)
    if symbols:
        query = query.where(Prediction.symbol.in_(symbols))
    if after_id is not None:
        query = query.where(Prediction.id > after_id)
    return list(await session.scalars(query))


_CURSOR_PREFIX = "id:"

CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
"""What a prediction cursor looks like: URL-safe base64 without padding."""


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that continues after the prediction with id `last_id`."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues after; ValueError for anything `encode_cursor` did not make."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(CURSOR_INVALID) from exc
    if not text.startswith(_CURSOR_PREFIX):
        raise ValueError(CURSOR_INVALID)
    return row_id(text[len(_CURSOR_PREFIX) :], least=0)
