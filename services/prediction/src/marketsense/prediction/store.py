"""Prediction rows, written one way whether the pipeline scores a symbol or a swap re-scores it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import Prediction
from marketsense.models.predictor import PredictorManifest
from marketsense.prediction.scoring import signal_for

UNIQUE_COLUMNS = ("run_id", "symbol", "as_of", "horizon_days", "model_name", "model_version")
"""One prediction per run, symbol, day, horizon and model version: a newer version adds its own
row, and a backfill's run one per day of its range."""


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


async def save_predictions(
    session: AsyncSession, rows: Sequence[PredictionRow], *, replace: bool
) -> list[int]:
    """Insert rows in the caller's transaction; return the ids of the rows written.

    A row whose run, symbol, day, horizon and model version exist already is replaced
    (`replace`: the same version scoring the same run again) or kept as it is (a re-score fills
    only gaps).
    """
    if not rows:
        return []
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    statement = insert(Prediction).values([asdict(row) for row in rows])
    if replace:
        statement = statement.on_conflict_do_update(
            index_elements=list(UNIQUE_COLUMNS),
            set_={
                "prob_up": statement.excluded.prob_up,
                "signal": statement.excluded.signal,
            },
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(UNIQUE_COLUMNS))
    return list(await session.scalars(statement.returning(Prediction.id)))
