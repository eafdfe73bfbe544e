"""The reaper: tasks whose worker was lost are retried or failed, stuck runs alert, gauges move."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from marketsense.common.db.engine import Database
from marketsense.common.events import IngestRequested
from marketsense.common.states import Stage
from marketsense.orchestrator.tasks.reaper import Reaper
from tests.conftest import TEST_AS_OF, eventually
from tests.orchestrator_support import (
    Orchestra,
    claim,
    orchestrator_settings,
    serve_orchestrator,
    start_run,
    succeed_symbol,
    task_rows,
)


@pytest.fixture
async def orchestra(
    tmp_path: Path, database: Database, database_url: str
) -> AsyncIterator[Orchestra]:
    """An orchestrator on an empty database of each kind, with a 60 s task timeout."""
    settings = orchestrator_settings(
        tmp_path, database_url, task_timeout_seconds=60, stuck_run_minutes=30
    )
    async with serve_orchestrator(settings) as served:
        yield served


def _later(**delta: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(**delta)


def _reaper(orchestra: Orchestra, **later: float) -> Reaper:
    """The orchestra's reaper, on a clock `later` ahead of now (or the real one)."""
    if not later:
        return Reaper(orchestra.runtime, orchestra.settings, orchestra.recorder)
    return Reaper(
        orchestra.runtime, orchestra.settings, orchestra.recorder, clock=lambda: _later(**later)
    )


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_task_running_past_its_timeout_is_requeued_under_the_attempt_limit(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB"])
    await claim(runtime, run_id, "AAA", Stage.INGEST)
    await claim(runtime, run_id, "BBB", Stage.INGEST)
    retries = _sample("marketsense_task_retries_total", {"stage": "ingest", "reason": "timeout"})

    assert await _reaper(orchestra).reap_timed_out_tasks() == 0
    reaper = Reaper(
        runtime, orchestra.settings, orchestra.recorder, clock=lambda: _later(seconds=61)
    )
    assert await reaper.reap_timed_out_tasks() == 2

    tasks = await task_rows(runtime, run_id)
    for symbol in ("AAA", "BBB"):
        assert tasks[symbol, "ingest"].state == "PENDING"
        assert tasks[symbol, "ingest"].last_error == "timed out after 1 attempts"

    async def requeued() -> bool:
        return len(orchestra.recorder.of(IngestRequested, run_id)) == 4

    await eventually(requeued)
    assert (
        _sample("marketsense_task_retries_total", {"stage": "ingest", "reason": "timeout"})
        == retries + 2
    )
    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    assert run["state"] == "RUNNING"


async def test_task_timing_out_at_the_attempt_limit_fails_and_the_run_settles(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA"])
    reaper = Reaper(
        runtime, orchestra.settings, orchestra.recorder, clock=lambda: _later(seconds=61)
    )
    for _ in range(orchestra.settings.handler_max_attempts):
        await claim(runtime, run_id, "AAA", Stage.INGEST)
        assert await reaper.reap_timed_out_tasks() == 1

    task = (await task_rows(runtime, run_id))["AAA", "ingest"]
    assert task.state == "FAILED"
    assert task.attempts == 3
    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    assert run["state"] == "FAILED"
    assert run["failed"] == [
        {
            "symbol": "AAA",
            "stage": "ingest",
            "attempts": 3,
            "last_error": "timed out after 3 attempts",
        }
    ]
    [alert] = orchestra.recorder.alerts
    assert alert.key == f"run-ended:{run_id}"
    assert alert.severity == "critical"
    assert "AAA: ingest failed after 3 attempts: timed out after 3 attempts" in alert.text


async def test_run_without_task_changes_for_too_long_raises_a_stuck_run_alert(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB"])
    await succeed_symbol(runtime, run_id, "AAA")

    early = Reaper(
        runtime, orchestra.settings, orchestra.recorder, clock=lambda: _later(minutes=29)
    )
    assert await early.alert_stuck_runs() == 0
    assert orchestra.recorder.alerts == []
    stuck = Reaper(
        runtime, orchestra.settings, orchestra.recorder, clock=lambda: _later(minutes=31)
    )
    assert await stuck.alert_stuck_runs() == 1

    [alert] = orchestra.recorder.alerts
    assert alert.key == f"stuck-run:{run_id}"
    assert alert.severity == "critical"
    assert "3 tasks are still PENDING or RUNNING" in alert.text
    assert f"marketsense run cancel {run_id}" in alert.text


async def test_reaper_pass_sets_the_task_gauge_of_live_runs(orchestra: Orchestra) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB", "CCC"])
    await succeed_symbol(runtime, run_id, "AAA")
    await claim(runtime, run_id, "BBB", Stage.INGEST)

    await _reaper(orchestra).reap_once()

    def gauge(stage: str, state: str) -> float:
        return _sample("marketsense_tasks", {"stage": stage, "state": state})

    assert gauge("ingest", "SUCCESS") == 1
    assert gauge("ingest", "RUNNING") == 1
    assert gauge("ingest", "PENDING") == 1
    assert gauge("predict", "PENDING") == 2
    assert gauge("predict", "FAILED") == 0
