"""After a swap: the new version's opinion on the features behind each latest prediction."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.cancelling import cancel_and_wait
from marketsense.common.db.models import FeatureSet, Prediction
from marketsense.common.errors import NonRetryableError
from marketsense.common.parquet import from_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.models.predictor import OnnxPredictor
from marketsense.prediction.store import PredictionRow, save_predictions

log = logging.getLogger(__name__)

CHUNK = 64
"""Symbols read, scored and written together."""

ATTEMPTS = 3
"""Tries of one re-scoring job before it gives up until the next swap."""


async def latest_sources(session: AsyncSession) -> dict[str, str]:
    """The run behind each symbol's latest prediction (its latest day, newest row)."""
    latest_day = (
        select(Prediction.symbol, func.max(Prediction.as_of).label("as_of"))
        .group_by(Prediction.symbol)
        .subquery()
    )
    rows = await session.execute(
        select(Prediction.symbol, Prediction.run_id)
        .join(
            latest_day,
            (Prediction.symbol == latest_day.c.symbol) & (Prediction.as_of == latest_day.c.as_of),
        )
        .order_by(Prediction.id.desc())
    )
    sources: dict[str, str] = {}
    for symbol, run_id in rows:
        sources.setdefault(symbol, run_id)
    return sources


async def rescore_latest(*, runtime: Runtime, predictor: OnnxPredictor, threshold: float) -> int:
    """Score, with `predictor`, each symbol's latest scored features it has not scored yet;
    return how many predictions were written. Idempotent: existing rows are left alone."""
    manifest = predictor.manifest
    async with runtime.database.session() as session:
        sources = await latest_sources(session)
        runs = set(sources.values())
        if not runs:
            return 0
        scored = await session.execute(
            select(Prediction.run_id, Prediction.symbol).where(
                Prediction.model_name == manifest.name,
                Prediction.model_version == manifest.version,
                Prediction.horizon_days == manifest.horizon_days,
                Prediction.run_id.in_(runs),
            )
        )
        done = {(run_id, symbol) for run_id, symbol in scored}
        feature_sets = {
            (stored.run_id, stored.symbol): stored
            for stored in await session.scalars(
                select(FeatureSet).where(
                    FeatureSet.feature_schema == manifest.feature_schema,
                    FeatureSet.run_id.in_(runs),
                )
            )
        }
    todo = [
        feature_sets[(run_id, symbol)]
        for symbol, run_id in sorted(sources.items())
        if (run_id, symbol) not in done and (run_id, symbol) in feature_sets
    ]
    written = 0
    for start in range(0, len(todo), CHUNK):
        written += await _rescore_chunk(
            runtime, predictor, todo[start : start + CHUNK], threshold=threshold
        )
    return written


async def _rescore_chunk(
    runtime: Runtime, predictor: OnnxPredictor, chunk: list[FeatureSet], *, threshold: float
) -> int:
    manifest = predictor.manifest
    contents = await asyncio.gather(
        *(_feature_row(runtime, stored, manifest.features) for stored in chunk)
    )
    usable = [(stored, row) for stored, row in zip(chunk, contents, strict=True) if row is not None]
    if not usable:
        return 0
    matrix = np.vstack([row for _, row in usable])
    probabilities = await asyncio.to_thread(predictor.predict_up, matrix)
    rows = [
        PredictionRow.scored(
            manifest,
            run_id=stored.run_id,
            symbol=stored.symbol,
            as_of=stored.as_of,
            prob_up=float(prob),
            threshold=threshold,
        )
        for (stored, _), prob in zip(usable, probabilities.tolist(), strict=True)
    ]
    # Keep what is there: the pipeline may have scored a symbol with this version meanwhile.
    async with runtime.transaction() as session:
        return len(await save_predictions(session, rows, replace=False))


async def _feature_row(
    runtime: Runtime, stored: FeatureSet, columns: list[str]
) -> np.ndarray | None:
    """A symbol's feature row in model order, or None (logged) if its file is unusable."""
    try:
        frame: pd.DataFrame = from_parquet_bytes(await runtime.store.get(stored.ref()))
    except NonRetryableError as exc:  # a missing or corrupt file stays so; skip the symbol
        log.warning("cannot re-score %s of run %s: %s", stored.symbol, stored.run_id, exc)
        return None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        log.warning("cannot re-score %s of run %s: lacks %s", stored.symbol, stored.run_id, missing)
        return None
    # The last row is the run's day: a backfill's file holds every day of its range before it.
    row: np.ndarray = frame[columns].to_numpy(np.float32)[-1:]
    return row


class Rescorer:
    """Runs one re-scoring job per swap in the background; a newer swap replaces an older job.

    `on_done` is called when a job wrote predictions (the served answers changed).
    """

    def __init__(self, runtime: Runtime, *, threshold: float, on_done: Callable[[], None]):
        self.runtime = runtime
        self.threshold = threshold
        self.on_done = on_done
        self._task: asyncio.Task[None] | None = None

    def schedule(self, predictor: OnnxPredictor) -> None:
        """Start re-scoring with `predictor`, abandoning a job for an older version."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = asyncio.create_task(self._run(predictor), name="rescore-latest")

    async def _run(self, predictor: OnnxPredictor) -> None:
        manifest = predictor.manifest
        for attempt in range(1, ATTEMPTS + 1):
            try:
                written = await rescore_latest(
                    runtime=self.runtime, predictor=predictor, threshold=self.threshold
                )
            except Exception:
                if attempt == ATTEMPTS:
                    log.exception("re-scoring with %s %s gave up", manifest.name, manifest.version)
                    return
                log.warning("re-scoring failed; trying again", exc_info=True)
                await asyncio.sleep(attempt)
                continue
            log.info(
                "re-scored %d symbols' latest features with %s version %s",
                written,
                manifest.name,
                manifest.version,
            )
            if written:
                self.on_done()
            return

    async def stop(self) -> None:
        """Abandon a running job."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
