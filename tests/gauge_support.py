"""Stored monitoring rows for tests: a model's daily figures on the simulated market, and drift."""

from __future__ import annotations

import datetime as dt
import math
import uuid

import numpy as np
import pandas as pd

from marketsense.common.db.engine import Database
from marketsense.common.db.models import DriftMeasurement, PerformanceDay
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.performance_types import DAILY_COLUMNS, RESOLVED_COLUMNS

SYMBOLS = [f"G{i:02d}" for i in range(12)]


def resolved_predictions(*, end: dt.date, days: int, score_noise: float) -> pd.DataFrame:
    """What a model scoring the simulated market's true text tone (blurred by noise) predicted
    for each symbol and day, and what the market then did: RESOLVED_COLUMNS."""
    market = SimulatedMarket(seed=7)
    noise = np.random.default_rng(11)
    frames = []
    for symbol in SYMBOLS:
        bars = market.daily_bars(symbol, as_of=end, days=days + 1)
        tone = market.daily_tone(symbol, as_of=end, days=days + 1).to_numpy()
        close = bars["close"].to_numpy()
        score = tone[:-1] + noise.normal(0, score_noise, days)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "as_of": list(bars["date"].iloc[:-1]),
                    "outcome_day": list(bars["date"].iloc[1:]),
                    "prob_up": 1 / (1 + np.exp(-4 * score)),
                    "realized_return": close[1:] / close[:-1] - 1,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[list(RESOLVED_COLUMNS)]


async def store_daily(database: Database, *, model: str, version: str, daily: pd.DataFrame) -> None:
    """Store a version's daily figures as the monitoring loop does."""
    async with database.session() as session:
        for day, row in daily.iterrows():
            fields = {c: row[c] for c in DAILY_COLUMNS}
            fields |= {c: None if math.isnan(fields[c]) else fields[c] for c in ("ic", "rank_ic")}
            for c in ("predictions", "hits", "book_positions", "book_hits"):
                fields[c] = int(fields[c])
            session.add(PerformanceDay(model_name=model, model_version=version, day=day, **fields))
        await session.commit()


async def store_drift(
    database: Database, *, model: str, version: str, as_of: dt.date, statistics: dict[str, float]
) -> None:
    """Store one run's drift of each feature against the version's reference."""
    run_id = str(uuid.uuid4())
    async with database.session() as session:
        for feature, statistic in statistics.items():
            session.add(
                DriftMeasurement(
                    run_id=run_id,
                    as_of=as_of,
                    model_name=model,
                    model_version=version,
                    feature=feature,
                    statistic=statistic,
                    p_value=1e-6 if statistic > 0.2 else 0.4,
                    rows=len(SYMBOLS),
                    reference_rows=5000,
                    drifted=statistic > 0.2,
                )
            )
        await session.commit()
