"""The CronJob's daily run starts one audited run per day through the orchestrator's API."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

from pydantic import SecretStr
from sqlalchemy import select

from marketsense.common.auth import Role
from marketsense.common.db.models import OperatorAction, Run
from marketsense.orchestrator.daily_run import DailyRunSettings, start_daily_run
from tests.conftest import TEST_AS_OF
from tests.orchestrator_support import Orchestra


def _settings(orchestra: Orchestra, role: Role = Role.PUBLISHER) -> DailyRunSettings:
    return DailyRunSettings(
        orchestrator_url="http://o",
        api_key=SecretStr(orchestra.keys[role]),
        schedule_universe="aaa, BBB,",
    )


async def _start(orchestra: Orchestra, settings: DailyRunSettings, day: dt.date) -> tuple[int, str]:
    return await start_daily_run(settings, today=lambda: day, transport=orchestra.transport)


async def test_daily_run_starts_the_days_run_once(orchestra: Orchestra) -> None:
    code, line = await _start(orchestra, _settings(orchestra), TEST_AS_OF)
    again, line_again = await _start(orchestra, _settings(orchestra), TEST_AS_OF)

    assert code == 0, line
    assert again == 0, line_again
    assert line_again.startswith(f"no new run for {TEST_AS_OF}: run ")
    assert line_again.endswith("is still live; wait for it to finish or cancel it")
    async with orchestra.runtime.database.session() as session:
        runs = list(await session.scalars(select(Run).where(Run.as_of == TEST_AS_OF)))
        assert [r.id for r in runs] == [line.split()[2]]
        action = await session.scalar(
            select(OperatorAction).where(OperatorAction.target == runs[0].id)
        )
    assert action is not None
    assert (action.action, action.actor) == ("start", "publisher-key")
    run = (await orchestra.api.get(f"/v1/runs/{runs[0].id}")).json()
    assert run["symbols"] == 2


async def test_daily_run_on_a_weekend_starts_nothing(orchestra: Orchestra) -> None:
    saturday = TEST_AS_OF + dt.timedelta(days=5 - TEST_AS_OF.weekday())

    code, line = await _start(orchestra, _settings(orchestra), saturday)

    assert (code, line) == (0, f"{saturday} is a weekend day: no run")
    assert (await orchestra.api.get("/v1/runs")).json()["items"] == []


async def test_daily_run_with_a_reader_key_is_refused_with_the_reason(orchestra: Orchestra) -> None:
    code, line = await _start(orchestra, _settings(orchestra, Role.READER), TEST_AS_OF)

    assert code == 1
    assert line.startswith(f"error: the orchestrator refused the run for {TEST_AS_OF} (403)")
    assert "publisher" in line


async def test_daily_run_gives_up_on_an_unreachable_orchestrator_after_its_attempts() -> None:
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = DailyRunSettings(
        orchestrator_url=f"http://127.0.0.1:{port}",
        api_key=SecretStr("msk_" + "x" * 40),
        schedule_universe="AAA",
        daily_run_attempts=2,
    )

    code, line = await start_daily_run(settings, today=lambda: TEST_AS_OF, max_wait_seconds=0.1)

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
