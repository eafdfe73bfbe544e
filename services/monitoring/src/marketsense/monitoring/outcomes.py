"""Outcomes: each stored prediction judged by the bars a later run (or a backfill) stored, once
its horizon has passed, and stored once."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import Outcome, Prediction, RawObject, Run
from marketsense.common.runtime import Runtime
from marketsense.monitoring.stored_bars import BARS_KIND, closes_of, read_closes

log = logging.getLogger(__name__)

SYMBOLS_AT_ONCE = 200
"""Symbols whose bars are held in memory at once: a run of 10,000 symbols is read in slices."""


@dataclass
class Tally:
    """What one resolution pass found, for its log line."""

    stored: int = 0
    pending: int = 0
    """Predictions whose horizon the bars do not reach yet."""
    missing_day: int = 0
    """Predictions whose own day has no bar in the run's bars."""
    not_finite: int = 0
    """Predictions whose return is undefined (a zero or missing close)."""
    rows: list[dict[str, object]] = field(default_factory=list)


async def resolve_outcomes(runtime: Runtime, *, run_id: str) -> int:
    """Resolve every stored prediction without an outcome that the run's stored bars can judge;
    return the outcomes stored (0 on a second call)."""
    async with runtime.database.session() as session:
        run = await session.get(Run, run_id)
        stored = list(
            await session.scalars(
                select(RawObject)
                .where(RawObject.run_id == run_id, RawObject.kind == BARS_KIND)
                .order_by(RawObject.symbol, RawObject.id)
            )
        )
    if run is None:
        log.warning("outcomes: run %s is not stored; nothing to resolve", run_id)
        return 0
    # A symbol's newest file wins, should ingestion have stored two.
    latest = list({row.symbol: row for row in stored}.values())
    total = Tally()
    for first in range(0, len(latest), SYMBOLS_AT_ONCE):
        batch = latest[first : first + SYMBOLS_AT_ONCE]
        frames = await read_closes(runtime.store, [row.ref() for row in batch])
        closes = {
            row.symbol: closes_of(frame, until=run.as_of)
            for row, frame in zip(batch, frames, strict=True)
        }
        tally = await _resolve_slice(runtime, closes, run_id=run_id)
        total.stored += tally.stored
        total.pending += tally.pending
        total.missing_day += tally.missing_day
        total.not_finite += tally.not_finite
    log.info(
        "outcomes of run %s: %d stored; %d await their horizon, %d lack their day's bar, "
        "%d have no finite return",
        run_id,
        total.stored,
        total.pending,
        total.missing_day,
        total.not_finite,
    )
    return total.stored


async def _resolve_slice(runtime: Runtime, closes: dict[str, pd.Series], *, run_id: str) -> Tally:
    """Judge the pending predictions of some symbols by their closes and store the outcomes."""
    tally = Tally()
    firsts = [series.index[0] for series in closes.values() if len(series)]
    if not firsts:
        return tally
    async with runtime.database.session() as session:
        pending = await _unresolved(session, sorted(closes), since=min(firsts))
    for prediction in pending:
        _judge(prediction, closes[prediction.symbol], tally, run_id=run_id)
    if tally.rows:
        async with runtime.transaction() as session:
            tally.stored = len(await _insert_new(session, tally.rows))
    return tally


async def _unresolved(
    session: AsyncSession, symbols: Sequence[str], *, since: dt.date
) -> list[Prediction]:
    """The symbols' predictions without an outcome made on or after `since` (older ones are
    beyond what the bars at hand can judge)."""
    query = (
        select(Prediction)
        .outerjoin(Outcome, Outcome.prediction_id == Prediction.id)
        .where(
            and_(
                Outcome.id.is_(None),
                Prediction.symbol.in_(symbols),
                Prediction.as_of >= since,
            )
        )
        .order_by(Prediction.id)
    )
    return list(await session.scalars(query))


def _judge(prediction: Prediction, closes: pd.Series, tally: Tally, *, run_id: str) -> None:
    """Add the prediction's outcome to the tally's rows, or count why it has none yet."""
    if prediction.as_of not in closes.index:
        tally.missing_day += 1
        return
    start = closes.index.get_loc(prediction.as_of)
    assert isinstance(start, int)  # the dates are unique
    end = start + prediction.horizon_days
    if end >= len(closes):
        tally.pending += 1
        return
    first, last = float(closes.iloc[start]), float(closes.iloc[end])
    # A zero, negative or missing close has no return: the bar is wrong, not the prediction.
    if not (first > 0 and math.isfinite(first) and last > 0 and math.isfinite(last)):
        tally.not_finite += 1
        return
    realized = last / first - 1.0
    tally.rows.append(
        {
            "prediction_id": prediction.id,
            "run_id": prediction.run_id,
            "symbol": prediction.symbol,
            "as_of": prediction.as_of,
            "horizon_days": prediction.horizon_days,
            "model_name": prediction.model_name,
            "model_version": prediction.model_version,
            "prob_up": prediction.prob_up,
            "outcome_day": closes.index[end],
            "realized_return": realized,
            "direction": "up" if realized > 0 else "down",
            "resolved_by_run": run_id,
        }
    )


async def _insert_new(session: AsyncSession, rows: list[dict[str, object]]) -> list[int]:
    """Insert the outcomes whose prediction has none yet; the ids of those written.

    Insert-or-ignore on the unique prediction: a redelivered event, or two replicas racing on the
    same run, store each outcome once.
    """
    if session.get_bind().dialect.name == "sqlite":
        lite = sqlite.insert(Outcome).on_conflict_do_nothing()
        return list(await session.scalars(lite.returning(Outcome.id), rows))
    pg = postgresql.insert(Outcome).on_conflict_do_nothing(index_elements=["prediction_id"])
    return list(await session.scalars(pg.returning(Outcome.id), rows))
