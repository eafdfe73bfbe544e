"""Stored monitoring history for the monitoring API's, `perf show`'s and the report's suites:
daily figures of two versions of one model built from real index returns, drift measurements
and decay alerts, inserted as the monitoring loop would have stored them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketsense.common.db.engine import Database
from marketsense.common.db.models import (
    DecayAlert,
    DriftMeasurement,
    ModelAlias,
    PerformanceDay,
    RegisteredModel,
)
from marketsense.monitoring.app import build_app
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.performance_types import DAILY_COLUMNS
from tests.model_registry_rows import new_api_key
from tests.orchestrator_support import served_on_loopback

BARS = Path(__file__).parent / "data" / "real" / "bars"
FEATURES = ("ret_1d", "ret_5d", "volatility_20d", "sentiment_mean")


def monitoring_settings(home: Path, database_url: str, **values: Any) -> MonitoringSettings:
    """Monitoring on the embedded bus and store, keys checked on every request."""
    defaults: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "api_key_cache_seconds": 0,
    }
    return MonitoringSettings(**(defaults | values))


def index_returns() -> pd.DataFrame:
    """Daily close-to-close returns of the S&P 500 and the NASDAQ Composite (2005-2008)."""
    closes = {
        name: pd.read_csv(BARS / f"{name}.csv", index_col=0, parse_dates=True)["close"]
        for name in ("GSPC", "IXIC")
    }
    frame = pd.DataFrame(closes).dropna().pct_change().dropna()
    frame.index = [stamp.date() for stamp in frame.index]
    return frame


def daily_history(days: int, *, skill: float, seed: int) -> pd.DataFrame:
    """`days` outcome days (the last of the sample) of a version's DAILY_COLUMNS: the benchmark
    is the S&P 500's real return, the book's return the NASDAQ-S&P spread plus a skill term."""
    real = index_returns().tail(days)
    rng = np.random.default_rng(seed)
    predictions = np.full(days, 50)
    hits = rng.binomial(50, 0.5 + skill, days)
    ic = rng.normal(skill, 0.1, days)
    ic[::7] = np.nan  # a day whose scores were all equal defines no correlation
    gross = (real["IXIC"] - real["GSPC"]).to_numpy() + rng.normal(skill / 50, 0.004, days)
    turnover = rng.uniform(0.2, 0.6, days)
    strategy = gross - turnover * 5 / 10_000
    return pd.DataFrame(
        {
            "predictions": predictions,
            "hits": hits,
            "book_positions": np.full(days, 20),
            "book_hits": rng.binomial(20, 0.5 + skill, days),
            "ic": ic,
            "rank_ic": ic * 0.9,
            "gross_return": gross,
            "turnover": turnover,
            "strategy_return": strategy,
            "benchmark_return": real["GSPC"].to_numpy(),
        },
        index=pd.Index(real.index, name="day"),
    )[list(DAILY_COLUMNS)]


@dataclass(frozen=True)
class History:
    """What was stored: each version's daily frame, by version."""

    model: str
    daily: dict[str, pd.DataFrame]
    production: str
    challenger: str


def _day_row(model: str, version: str, day: dt.date, row: dict[Any, Any]) -> PerformanceDay:
    values = {c: row[c] for c in DAILY_COLUMNS}
    for column in ("ic", "rank_ic"):
        values[column] = None if pd.isna(values[column]) else float(values[column])
    for column in ("predictions", "hits", "book_positions", "book_hits"):
        values[column] = int(values[column])
    return PerformanceDay(model_name=model, model_version=version, day=day, **values)


async def store_history(database: Database, model: str, *, days: int = 80) -> History:
    """Two versions' daily figures (production the longer and better), production's alias,
    drift over four runs and two decay alerts of the challenger."""
    daily = {
        "1": daily_history(days, skill=0.04, seed=1),
        "2": daily_history(days // 2, skill=0.0, seed=2),
    }
    async with database.session() as session:
        session.add(RegisteredModel(name=model, kind="predictor", created_by="test"))
        await session.flush()
        session.add(
            ModelAlias(
                model_name=model,
                alias="production",
                version=1,
                updated_at=dt.datetime(2008, 1, 2, tzinfo=dt.UTC),
            )
        )
        for version, frame in daily.items():
            session.add_all(
                _day_row(model, version, day, row)
                for day, row in zip(frame.index, frame.to_dict("records"), strict=True)
            )
        session.add_all(_drift_rows(model, list(daily["1"].index[-4:])))
        session.add_all(_alerts(model, daily["2"]))
        await session.commit()
    return History(model=model, daily=daily, production="1", challenger="2")


def _drift_rows(model: str, days: list[dt.date]) -> list[DriftMeasurement]:
    """KS statistics that grow run by run, the last run's above the default threshold."""
    rows = []
    for i, day in enumerate(days):
        for j, feature in enumerate(FEATURES):
            statistic = 0.05 + 0.06 * i + 0.01 * j
            rows.append(
                DriftMeasurement(
                    run_id=f"run-{day.isoformat()}",
                    as_of=day,
                    model_name=model,
                    model_version="1",
                    feature=feature,
                    statistic=statistic,
                    p_value=float(np.exp(-40 * statistic)),
                    rows=50,
                    reference_rows=5000,
                    drifted=statistic > 0.2,
                )
            )
    return rows


def _alerts(model: str, frame: pd.DataFrame) -> list[DecayAlert]:
    """Two decay alerts of the challenger: halfway through its days and on the last."""
    days = list(frame.index)
    return [
        DecayAlert(
            model_name=model,
            model_version="2",
            day=days[i],
            window_start=days[max(i - 20, 0)],
            window_end=days[i],
            observations=min(i + 1, 21),
            sharpe=-1.5 - i / 100,
            benchmark_sharpe=0.8,
            threshold=0.88,
            confidence=0.95,
            reason=f"Sharpe below 1.1 times the benchmark's over 21 days (day {i})",
        )
        for i in (len(days) // 2, len(days) - 1)
    ]


@dataclass(frozen=True)
class Served:
    """Monitoring served on loopback over stored history (None: none stored), a reader's key."""

    url: str
    key: str
    history: History | None


@contextlib.contextmanager
def served_monitoring(tmp_path: Path, *, days: int | None = 80) -> Iterator[Served]:
    """The monitoring app under uvicorn on a SQLite file holding `days` of history of a model
    no other test uses (none for None), which is the service's monitored model."""
    model = f"predictor-{uuid.uuid4().hex[:8]}"
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitoring.db'}"
    settings = monitoring_settings(tmp_path / "home", url, monitored_model=model)
    with served_on_loopback(build_app(settings)) as base:

        async def prepare() -> tuple[str, History | None]:
            database = Database(url)
            try:
                history = None if days is None else await store_history(database, model, days=days)
                return await new_api_key(database), history
            finally:
                await database.dispose()

        key, history = asyncio.run(prepare())
        yield Served(base, key, history)
