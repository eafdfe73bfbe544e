"""Prediction rows, written one way whether the pipeline scores a symbol or a swap re-scores it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import Prediction
from marketsense.models.predictor import PredictorManifest
from marketsense.prediction.scoring import signal_for

UNIQUE_CONSTRAINT = "uq_predictions_per_model_version"
"""One prediction per run, symbol, horizon, model version and day (a backfill run has many days):
a newer version adds its own row."""


@dataclass(frozen=True)
class PredictionRow:
    """What one model version said about one symbol of one run."""

    run_id: str
    symbol: str
    as_of: dt.date
    horizon_days: int
    prob_up: float
    signal: str
    model_name: str
    model_version: str

    @classmethod
    def scored(
        cls,
        manifest: PredictorManifest,
        *,
        run_id: str,
        symbol: str,
        as_of: dt.date,
        prob_up: float,
        threshold: float,
    ) -> PredictionRow:
        """The row for a probability a predictor gave, with its signal."""
        return cls(
            run_id=run_id,
            symbol=symbol,
            as_of=as_of,
            horizon_days=manifest.horizon_days,
            prob_up=prob_up,
            signal=signal_for(prob_up, threshold=threshold),
            model_name=manifest.name,
            model_version=manifest.version,
        )

    @classmethod
    def each_day(
        cls,
        manifest: PredictorManifest,
        probabilities: np.ndarray,
        *,
        run_id: str,
        symbol: str,
        days: Sequence[dt.date],
        threshold: float,
    ) -> list[PredictionRow]:
        """One row per day of a symbol's feature rows, from the predictor's probabilities."""
        return [
            cls.scored(
                manifest,
                run_id=run_id,
                symbol=symbol,
                as_of=day,
                prob_up=float(prob_up),
                threshold=threshold,
            )
            for day, prob_up in zip(days, probabilities.tolist(), strict=True)
        ]


async def save_predictions(
    session: AsyncSession, rows: Sequence[PredictionRow], *, replace: bool
) -> list[int]:
    """Insert rows in the caller's transaction; return the ids of the rows written.

    A row whose run, symbol, horizon, model version and day exist already is replaced (`replace`:
    the same version scoring the same run again) or kept as it is (a re-score fills only gaps).
    """
    if not rows:
        return []
    # One statement executed for every row: SQLAlchemy sends them as multi-row INSERTs in pages
    # under the drivers' parameter limits, and compiles the statement once, not once per row.
    statement = _upsert(session, replace=replace).returning(Prediction.id)
    return list(await session.scalars(statement, [asdict(row) for row in rows]))


def _upsert(session: AsyncSession, *, replace: bool) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that replaces or keeps a row already stored for the same key."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite cannot name a constraint; without a target any uniqueness conflict counts, and
        # the key above is the table's only one besides the generated id.
        lite = sqlite.insert(Prediction)
        if not replace:
            return lite.on_conflict_do_nothing()
        return lite.on_conflict_do_update(
            set_={"prob_up": lite.excluded.prob_up, "signal": lite.excluded.signal}
        )
    pg = postgresql.insert(Prediction)
    if not replace:
        return pg.on_conflict_do_nothing(constraint=UNIQUE_CONSTRAINT)
    return pg.on_conflict_do_update(
        constraint=UNIQUE_CONSTRAINT,
        set_={"prob_up": pg.excluded.prob_up, "signal": pg.excluded.signal},
    )
