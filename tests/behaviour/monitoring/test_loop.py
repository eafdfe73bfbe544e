"""The monitoring loop on every database: a market whose text signal flips decays the model that
reads it, which stores one decay alert, queues one `retrain.requested` with the window and sends
one alert, however often the run's end is delivered; a failing step leaves the others' work."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import DecayAlert, Outcome, PerformanceDay
from marketsense.common.events import RetrainRequested
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring import loop as monitoring_loop
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.loop import MonitoringIncomplete, MonitoringLoop
from tests.behaviour.monitoring.market_runs import (
    MODEL,
    VERSION,
    AlertRecorder,
    finished_run,
    monitoring_settings,
    sessions,
)
from tests.service_support import queued_events, service_runtime

DAYS = sessions(dt.date(2026, 9, 1), dt.date(2026, 10, 27))
"""40 sessions: a backfill of all but the last, then a daily run of the last."""
FLIP = DAYS[14]
"""The texts' lead turns against the returns after this day: the last 24 outcome days."""
SYMBOLS = [f"F{i:02d}" for i in range(20)]


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """A runtime on an empty database of each kind."""
    async with service_runtime(
        service="monitoring", database_url=database_url, store=store, home=tmp_path
    ) as runtime:
        yield runtime


@pytest.fixture
def settings(tmp_path: Path, database_url: str, store: ObjectStore) -> MonitoringSettings:
    """Monitoring's settings on the same database and store."""
    return monitoring_settings(tmp_path, database_url, store)


async def count(runtime: Runtime, table: type[object]) -> int:
    """Rows of a table."""
    async with runtime.database.session() as session:
        return await session.scalar(select(func.count()).select_from(table)) or 0


async def retrain_requests(runtime: Runtime) -> list[RetrainRequested]:
    """The `retrain.requested` events queued for the bus."""
    return [e for _, e in await queued_events(runtime) if isinstance(e, RetrainRequested)]


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_flipped_signal_raises_one_alert_and_one_retrain_request_however_redelivered(
    runtime: Runtime, settings: MonitoringSettings
) -> None:
    market = SimulatedMarket(seed=5, regime_change=FLIP, regime_signal_factor=-1.0)
    # Judged from the 20th outcome day, so a short history shows the decay.
    settings = settings.model_copy(update={"decay_min_observations": 20})
    alerter = AlertRecorder()
    loop = MonitoringLoop(runtime, settings, alerter)
    backfill = await finished_run(runtime, market, start=DAYS[0], as_of=DAYS[-2], symbols=SYMBOLS)

    await loop.run_finished(backfill)
    await loop.run_finished(backfill)  # delivered again
    daily = await finished_run(runtime, market, as_of=DAYS[-1], symbols=SYMBOLS)
    await loop.run_finished(daily)

    async with runtime.database.session() as session:
        alerts = list(await session.scalars(select(DecayAlert)))
    assert len(alerts) == 1
    found = alerts[0]
    assert (found.model_name, found.model_version) == (MODEL, VERSION)
    # Found on the backfill's day that first showed it, as daily runs would have found it.
    assert found.day == found.window_end < DAYS[-2]
    assert sum(FLIP < day <= found.day for day in DAYS) <= 10
    assert FLIP < found.window_start < found.window_end
    assert found.sharpe < found.threshold
    [request] = await retrain_requests(runtime)
    assert (request.model_name, request.window_start, request.window_end) == (
        MODEL,
        found.window_start,
        found.window_end,
    )
    [alert] = alerter.alerts
    assert alert.key == f"decay:{MODEL}:{VERSION}:{found.day}"
    assert await count(runtime, Outcome) == len(SYMBOLS) * (len(DAYS) - 1)
    assert await count(runtime, PerformanceDay) == len(DAYS) - 1


@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_failing_step_keeps_the_others_work_and_asks_for_the_run_again(
    runtime: Runtime, settings: MonitoringSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_args: object, **_kwargs: object) -> list[object]:
        raise RuntimeError("reference unreadable")

    monkeypatch.setattr(monitoring_loop, "measure_run_drift", unreachable)
    market = SimulatedMarket(seed=5)
    loop = MonitoringLoop(runtime, settings, AlertRecorder())
    backfill = await finished_run(
        runtime, market, start=DAYS[0], as_of=DAYS[10], symbols=SYMBOLS[:10]
    )

    with pytest.raises(MonitoringIncomplete, match="drift failed") as failed:
        await loop.run_finished(backfill)

    assert isinstance(failed.value.__cause__, RuntimeError)
    assert await count(runtime, Outcome) == 10 * 10
    assert await count(runtime, PerformanceDay) == 10
