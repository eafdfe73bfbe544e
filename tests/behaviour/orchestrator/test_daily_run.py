"""The CronJob's daily run starts one audited run per day through the orchestrator's API."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.db.models import OperatorAction, Run
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.app import build_app
from marketsense.orchestrator.daily_run import DailyRunSettings, start_daily_run
from tests.conftest import TEST_AS_OF
from tests.model_registry_rows import new_api_key
from tests.orchestrator_support import orchestrator_settings, served_on_loopback


@dataclass(frozen=True)
class Served:
    """An orchestrator on loopback, a key of every role, and a runtime on its database."""

    url: str
    keys: dict[Role, str]
    runtime: Runtime


@pytest.fixture
async def served(tmp_path: Path, database: Database) -> AsyncIterator[Served]:
    """The orchestrator under uvicorn on an empty database of each kind, as the CronJob
    reaches it."""
    settings = orchestrator_settings(tmp_path, database.url)
    runtime = Runtime(settings, service="orchestrator")
    try:
        keys = {
            role: await new_api_key(runtime.database, role=role, name=f"{role.value}-key")
            for role in Role
        }
        with served_on_loopback(build_app(settings)) as url:
            yield Served(url, keys, runtime)
    finally:
        await runtime.database.dispose()


def _settings(served: Served, role: Role = Role.PUBLISHER) -> DailyRunSettings:
    return DailyRunSettings(
        orchestrator_url=served.url,
        api_key=SecretStr(served.keys[role]),
        schedule_universe="aaa, BBB,",
    )


def _at_half_past_nine_utc(day: dt.date) -> dt.datetime:
    """When the chart's CronJob fires on `day`: 21:30 UTC, after the New York close."""
    return dt.datetime.combine(day, dt.time(21, 30), tzinfo=dt.UTC)


def _start(settings: DailyRunSettings, day: dt.date) -> tuple[int, str]:
    return start_daily_run(settings, now=lambda: _at_half_past_nine_utc(day))


async def test_daily_run_starts_the_days_run_once(served: Served) -> None:
    code, line = _start(_settings(served), TEST_AS_OF)
    again, line_again = _start(_settings(served), TEST_AS_OF)

    assert code == 0, line
    assert again == 0, line_again
    assert line_again.startswith(f"no new run for {TEST_AS_OF}: run ")
    assert line_again.endswith("is still live; wait for it to finish or cancel it")
    async with served.runtime.database.session() as session:
        runs = list(await session.scalars(select(Run).where(Run.as_of == TEST_AS_OF)))
        assert [r.id for r in runs] == [line.split()[2]]
        action = await session.scalar(
            select(OperatorAction).where(OperatorAction.target == runs[0].id)
        )
    assert action is not None
    assert (action.action, action.actor) == ("start", "publisher-key")
    assert runs[0].symbols == 2


async def test_daily_run_on_a_weekend_starts_nothing(served: Served) -> None:
    saturday = TEST_AS_OF + dt.timedelta(days=5 - TEST_AS_OF.weekday())

    code, line = _start(_settings(served), saturday)

    assert (code, line) == (
        0,
        f"no run: {saturday} is not a XNYS trading day (Saturday) — the next is 2026-11-23",
    )
    async with served.runtime.database.session() as session:
        assert list(await session.scalars(select(Run))) == []


async def test_daily_run_on_an_exchange_holiday_starts_nothing_and_exits_0(
    served: Served,
) -> None:
    thanksgiving = dt.date(2026, 11, 26)

    code, line = _start(_settings(served), thanksgiving)

    assert (code, line) == (
        0,
        "no run: 2026-11-26 is not a XNYS trading day (Thanksgiving) — the next is 2026-11-27",
    )
    async with served.runtime.database.session() as session:
        assert list(await session.scalars(select(Run))) == []


async def test_daily_run_after_midnight_utc_runs_the_new_york_session_just_closed(
    served: Served,
) -> None:
    # 01:30 UTC on Saturday is 20:30 on Friday in New York: Friday's session has closed.
    saturday_early = dt.datetime(2026, 11, 21, 1, 30, tzinfo=dt.UTC)

    code, line = start_daily_run(_settings(served), now=lambda: saturday_early)

    assert code == 0, line
    async with served.runtime.database.session() as session:
        assert [r.as_of for r in await session.scalars(select(Run))] == [TEST_AS_OF]


async def test_daily_run_with_a_reader_key_is_refused_with_the_reason(served: Served) -> None:
    code, line = _start(_settings(served, Role.READER), TEST_AS_OF)

    assert code == 1
    assert line.startswith(f"error: the orchestrator refused the run for {TEST_AS_OF} (403)")
    assert "publisher" in line


def test_daily_run_gives_up_on_an_unreachable_orchestrator_after_its_attempts() -> None:
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = DailyRunSettings(
        orchestrator_url=f"http://127.0.0.1:{port}",
        api_key=SecretStr("msk_" + "x" * 40),
        schedule_universe="AAA",
        daily_run_attempts=2,
    )

    code, line = start_daily_run(
        settings, now=lambda: _at_half_past_nine_utc(TEST_AS_OF), max_wait_seconds=0.1
    )

    assert code == 1
    assert line.startswith(f"error: no run for {TEST_AS_OF} after 2 attempts: cannot reach")


def test_daily_run_without_a_key_exits_2_naming_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSENSE_")}
    done = subprocess.run(
        [sys.executable, "-m", "marketsense.orchestrator.daily_run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: set MARKETSENSE_API_KEY, MARKETSENSE_SCHEDULE_UNIVERSE"
        " (see the chart's dailyRun values)"
    )


def test_daily_run_with_an_unknown_exchange_exits_2_naming_it() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSENSE_")}
    env |= {
        "MARKETSENSE_API_KEY": "msk_" + "x" * 40,
        "MARKETSENSE_SCHEDULE_UNIVERSE": "AAPL",
        "MARKETSENSE_EXCHANGE": "NYSE",
    }
    done = subprocess.run(
        [sys.executable, "-m", "marketsense.orchestrator.daily_run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "MARKETSENSE_EXCHANGE" in done.stderr
    assert "unknown exchange 'NYSE'" in done.stderr
