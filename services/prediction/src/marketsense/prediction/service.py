"""Prediction logic: score processed features with the served predictor, read predictions back."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, case, select
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
from marketsense.prediction.model import OnnxPredictor, PredictorManifest
from marketsense.prediction.schemas import PredictionRead, PredictResponse, PredictRow

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
        # One row per model version: what an earlier version said about this run stays.
        prediction = await session.scalar(
            select(Prediction).where(
                Prediction.run_id == run_id,
                Prediction.symbol == symbol,
                Prediction.horizon_days == manifest.horizon_days,
                Prediction.model_name == manifest.name,
                Prediction.model_version == manifest.version,
            )
        )
        if prediction is None:
            prediction = Prediction(
                run_id=run_id,
                symbol=symbol,
                horizon_days=manifest.horizon_days,
                model_name=manifest.name,
                model_version=manifest.version,
            )
            session.add(prediction)
        prediction.as_of = event.as_of
        prediction.prob_up = prob_up
        prediction.signal = signal_for(prob_up, threshold=threshold)
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
) -> list[Prediction]:
    """Stored predictions in id order, filtered, starting after `after_id` (keyset paging)."""
    query = select(Prediction).order_by(Prediction.id).limit(limit)
    if as_of is not None:
        query = query.where(Prediction.as_of == as_of)
    if symbols:
        query = query.where(Prediction.symbol.in_(symbols))
    if after_id is not None:
        query = query.where(Prediction.id > after_id)
    return list(await session.scalars(query))


_CURSOR_PREFIX = "id:"


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that continues after the prediction with id `last_id`."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues after; ValueError for anything `encode_cursor` did not make."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor this API returned") from exc
    if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX) :].isdigit():
        raise ValueError("not a cursor this API returned")
    return int(text[len(_CURSOR_PREFIX) :])


FieldProblem = dict[str, Any]
"""One invalid field, shaped like FastAPI's validation errors (type, loc, msg, input)."""


class FeatureMismatch(ValueError):
    """Supplied feature rows do not fit the served model's inputs."""

    def __init__(self, problems: list[FieldProblem]):
        super().__init__(f"{len(problems)} feature problem(s)")
        self.problems = problems


def feature_matrix(manifest: PredictorManifest, rows: Sequence[PredictRow]) -> np.ndarray:
    """The model's input (float32, manifest column order, missing as NaN) for supplied rows;
    raise FeatureMismatch naming every absent or unknown feature."""
    wanted = manifest.features
    known = set(wanted)
    problems: list[FieldProblem] = []
    for i, row in enumerate(rows):
        for column in wanted:
            if column not in row.features:
                problems.append(
                    {
                        "type": "missing",
                        "loc": ("body", "rows", i, "features", column),
                        "msg": f"missing feature {column} ({manifest.name} version "
                        f"{manifest.version} reads it; send null for a missing value)",
                        "input": None,
                    }
                )
        for column in row.features.keys() - known:
            problems.append(
                {
                    "type": "extra_forbidden",
                    "loc": ("body", "rows", i, "features", column),
                    "msg": f"unknown feature {column} ({manifest.name} version "
                    f"{manifest.version} reads {', '.join(wanted)})",
                    "input": row.features[column],
                }
            )
    if problems:
        raise FeatureMismatch(problems)
    nan = float("nan")
    return np.array(
        [[nan if (v := row.features[c]) is None else v for c in wanted] for row in rows],
        dtype=np.float32,
    ).reshape(len(rows), len(wanted))


def online_predictions(
    manifest: PredictorManifest,
    rows: Sequence[PredictRow],
    probabilities: np.ndarray,
    *,
    threshold: float,
) -> PredictResponse:
    """The response for scored rows: one prediction per row, without a run."""
    return PredictResponse(
        model_name=manifest.name,
        model_version=manifest.version,
        horizon_days=manifest.horizon_days,
        predictions=[
            PredictionRead(
                symbol=row.symbol,
                as_of=row.as_of,
                horizon_days=manifest.horizon_days,
                prob_up=float(prob),
                signal=signal_for(float(prob), threshold=threshold),
                model_name=manifest.name,
                model_version=manifest.version,
                run_id=None,
            )
            for row, prob in zip(rows, probabilities.tolist(), strict=True)
        ],
    )
