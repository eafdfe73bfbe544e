"""The daily schedule starts one run per fire time, as `scheduler`, once across replicas."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import OperatorAction, Run
from marketsense.orchestrator.config import OrchestratorSettings
from marketsense.orchestrator.runs.scheduler import Scheduler
from tests.conftest import TEST_AS_OF
from tests.orchestrator_support import Orchestra, orchestrator_settings, serve_orchestrator


class FakeClock:
    """A clock that moves only when the scheduler sleeps, recording each sleep."""

    def __init__(self, now: dt.datetime):
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Advance the clock instead of waiting."""
        self.slept.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
async def orchestra(
    tmp_path: Path, database: Database, database_url: str
) -> AsyncIterator[Orchestra]:
    """An orchestrator whose schedule fires at 21:30 UTC on weekdays over three symbols."""
    settings = orchestrator_settings(
        tmp_path,
        database_url,
        schedule_cron="30 21 * * 1-5",
        schedule_universe="aaa, BBB,CCC,",
    )
    async with serve_orchestrator(settings) as served:
        yield served


def _at(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


async def test_schedule_starts_the_days_run_at_the_cron_time(orchestra: Orchestra) -> None:
    clock = FakeClock(_at(TEST_AS_OF, 20, 0))
    scheduler = Scheduler(orchestra.runtime, orchestra.settings, clock=clock, sleep=clock.sleep)
    assert scheduler.next_fire() == _at(TEST_AS_OF, 21, 30)

    run_id = await scheduler.wait_and_fire()

    assert run_id is not None
    assert clock.now == _at(TEST_AS_OF, 21, 30)
    assert max(clock.slept) <= 60
    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    assert (run["as_of"], run["state"], run["symbols"]) == (TEST_AS_OF.isoformat(), "RUNNING", 3)
    async with orchestra.runtime.database.session() as session:
        action = await session.scalar(select(OperatorAction).where(OperatorAction.target == run_id))
    assert action is not None
    assert (action.action, action.actor) == ("start", "scheduler")


async def test_second_replica_firing_at_the_same_time_starts_no_second_run(
    orchestra: Orchestra,
) -> None:
    replicas = [
        Scheduler(orchestra.runtime, orchestra.settings, clock=clock, sleep=clock.sleep)
        for clock in (FakeClock(_at(TEST_AS_OF, 21, 0)), FakeClock(_at(TEST_AS_OF, 21, 0)))
    ]
    first = await replicas[0].wait_and_fire()
    second = await replicas[1].wait_and_fire()

    assert first is not None
    assert second is None
    async with orchestra.runtime.database.session() as session:
        runs = list(await session.scalars(select(Run.id).where(Run.as_of == TEST_AS_OF)))
    assert runs == [first]


async def test_schedule_after_friday_fires_on_monday(orchestra: Orchestra) -> None:
    friday = TEST_AS_OF  # 2026-11-20
    assert friday.weekday() == 4
    clock = FakeClock(_at(friday, 22, 0))
    scheduler = Scheduler(orchestra.runtime, orchestra.settings, clock=clock, sleep=clock.sleep)
    assert scheduler.next_fire() == _at(friday + dt.timedelta(days=3), 21, 30)


async def test_schedule_on_an_exchange_holiday_starts_nothing_quietly(
    orchestra: Orchestra, caplog: pytest.LogCaptureFixture
) -> None:
    thanksgiving = dt.date(2026, 11, 26)  # a Thursday: the cron fires, New York is closed
    clock = FakeClock(_at(thanksgiving, 20, 0))
    scheduler = Scheduler(orchestra.runtime, orchestra.settings, clock=clock, sleep=clock.sleep)

    with caplog.at_level(logging.INFO, logger="marketsense.orchestrator.runs.scheduler"):
        run_id = await scheduler.wait_and_fire()

    assert run_id is None
    assert clock.now == _at(thanksgiving, 21, 30)
    [record] = [r for r in caplog.records if r.name.endswith("scheduler")]
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "no scheduled run: 2026-11-26 is not a XNYS trading day (Thanksgiving) — "
        "the next is 2026-11-27"
    )
    async with orchestra.runtime.database.session() as session:
        assert list(await session.scalars(select(Run))) == []
    assert orchestra.recorder.alerts == []
    # The next fire is the day after, a session (closing early), and starts its run.
    assert await scheduler.wait_and_fire() is not None
    async with orchestra.runtime.database.session() as session:
        assert list(await session.scalars(select(Run.as_of))) == [dt.date(2026, 11, 27)]


async def test_a_fire_after_midnight_utc_runs_the_session_just_closed_in_new_york(
    orchestra: Orchestra, tmp_path: Path, database_url: str
) -> None:
    # 01:30 UTC Tuesday to Saturday is 20:30 or 21:30 in New York the evening before.
    settings = orchestrator_settings(
        tmp_path, database_url, schedule_cron="30 1 * * 2-6", schedule_universe="AAA"
    )
    clock = FakeClock(_at(TEST_AS_OF + dt.timedelta(days=1), 1, 0))  # Saturday 01:00 UTC
    scheduler = Scheduler(orchestra.runtime, settings, clock=clock, sleep=clock.sleep)

    run_id = await scheduler.wait_and_fire()

    assert run_id is not None
    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    assert run["as_of"] == TEST_AS_OF.isoformat()  # Friday, not Saturday


def test_schedule_settings_reject_a_bad_cron_and_need_symbols(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a cron expression"):
        OrchestratorSettings(home=tmp_path, schedule_cron="every day at nine")
    assert OrchestratorSettings(home=tmp_path, schedule_cron="").schedule_cron is None
    with pytest.raises(ValueError, match="unknown exchange 'NYSE': use an ISO 10383 MIC"):
        OrchestratorSettings(home=tmp_path, exchange="NYSE")
    assert OrchestratorSettings(home=tmp_path).exchange == "XNYS"
    with pytest.raises(ValueError, match="not valid symbols"):
        OrchestratorSettings(home=tmp_path, schedule_universe="AAPL,not a symbol")
    settings = OrchestratorSettings(home=tmp_path, schedule_cron="0 21 * * 1-5")
    with pytest.raises(ValueError, match="MARKETSENSE_SCHEDULE_UNIVERSE"):
        Scheduler(None, settings)  # type: ignore[arg-type]
