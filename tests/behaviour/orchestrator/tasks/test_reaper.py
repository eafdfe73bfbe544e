"""The reaper: tasks whose worker or event was lost are retried or failed, runs whose finishing
events were lost settle from their tasks (once, whatever the replicas), stuck runs alert, gauges
move."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from marketsense.common.db.engine import Database
from marketsense.common.db.models import Run, Task
from marketsense.common.events import FeaturesReady, IngestRequested, RawDataReady
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.orchestrator.tasks.reaper import Reaper
from tests.conftest import TEST_AS_OF, eventually
from tests.orchestrator_support import (
    Orchestra,
    claim,
    finish,
    orchestrator_settings,
    record_features,
    record_raw,
    serve_orchestrator,
    start_run,
    succeed_symbol,
    task_rows,
)


@pytest.fixture
async def orchestra(
    tmp_path: Path, database: Database, database_url: str
) -> AsyncIterator[Orchestra]:
    """An orchestrator on an empty database of each kind, with a 60 s task timeout and a 120 s
    pending timeout."""
    settings = orchestrator_settings(
        tmp_path,
        database_url,
        task_timeout_seconds=60,
        pending_timeout_seconds=120,
        stuck_run_minutes=30,
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


def _finished(state: str) -> float:
    return _sample("marketsense_runs_finished_total", {"state": state})


async def _age(runtime: Runtime, run_id: str, seconds: float) -> None:
    """Make a run and all its tasks look unchanged for `seconds`."""
    then = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    async with runtime.transaction() as session:
        await session.execute(update(Run).where(Run.id == run_id).values(updated_at=then))
        await session.execute(update(Task).where(Task.run_id == run_id).values(updated_at=then))


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


async def test_run_whose_finishing_events_were_lost_settles_once_across_replicas(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB"])
    # The tasks end, but no predictions.ready or task.failed is handled (dead-lettered, lost).
    await succeed_symbol(runtime, run_id, "AAA")
    await claim(runtime, run_id, "BBB", Stage.INGEST)
    await finish(runtime, run_id, "BBB", Stage.INGEST, error="no data")
    failed_before = _finished("FAILED")

    replicas = [_reaper(orchestra), _reaper(orchestra)]
    passes = await asyncio.gather(*(replica.reap_once() for replica in replicas))

    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    assert run["state"] == "FAILED"  # 1 of 2 symbols failed, above the 1% threshold
    assert sorted(p.settled for p in passes) == [0, 1]
    assert _finished("FAILED") == failed_before + 1
    [alert] = orchestra.recorder.alerts
    assert alert.key == f"run-ended:{run_id}"
    # The failed symbol's later stages end with the run.
    tasks = await task_rows(runtime, run_id)
    assert tasks["BBB", "process"].state == "SKIPPED"
    assert tasks["BBB", "predict"].state == "SKIPPED"
    assert {t.state for (s, _), t in tasks.items() if s == "AAA"} == {"SUCCESS"}

    again = await _reaper(orchestra).reap_once()
    assert again.settled == 0
    assert _finished("FAILED") == failed_before + 1
    assert len(orchestra.recorder.alerts) == 1


async def test_successful_run_whose_last_event_was_lost_settles_without_alert(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB"])
    await succeed_symbol(runtime, run_id, "AAA")
    await succeed_symbol(runtime, run_id, "BBB")
    success_before = _finished("SUCCESS")

    await _reaper(orchestra).reap_once()

    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    assert run["state"] == "SUCCESS"
    assert run["finished_at"] is not None
    assert _finished("SUCCESS") == success_before + 1
    assert orchestra.recorder.alerts == []


async def test_pending_task_whose_event_was_lost_is_resent_once_across_replicas(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB"])
    await _age(runtime, run_id, seconds=121)
    retries = _sample("marketsense_task_retries_total", {"stage": "ingest", "reason": "timeout"})

    replicas = [_reaper(orchestra), _reaper(orchestra)]
    reaped = await asyncio.gather(*(replica.reap_timed_out_tasks() for replica in replicas))

    assert sum(reaped) == 2
    tasks = await task_rows(runtime, run_id)
    for symbol in ("AAA", "BBB"):
        assert tasks[symbol, "ingest"].state == "PENDING"
        assert tasks[symbol, "ingest"].attempts == 1
        assert tasks[symbol, "ingest"].last_error == "not picked up in time after 1 attempts"

    async def resent() -> bool:
        return len(orchestra.recorder.of(IngestRequested, run_id)) == 4

    await eventually(resent)
    assert sorted(s or "" for s, _ in orchestra.recorder.of(IngestRequested, run_id)[2:]) == [
        "AAA",
        "BBB",
    ]
    assert (
        _sample("marketsense_task_retries_total", {"stage": "ingest", "reason": "timeout"})
        == retries + 2
    )
    # Re-sent just now: not stranded again until another pending timeout passes.
    assert await _reaper(orchestra).reap_timed_out_tasks() == 0


async def test_pending_tasks_behind_a_moving_queue_are_left_alone(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB", "CCC"])
    await _age(runtime, run_id, seconds=121)
    # Ingestion is working through its queue: BBB and CCC wait their turn, not lost.
    await claim(runtime, run_id, "AAA", Stage.INGEST)

    assert await _reaper(orchestra).reap_timed_out_tasks() == 0

    tasks = await task_rows(runtime, run_id)
    assert tasks["BBB", "ingest"].attempts == 0
    assert tasks["CCC", "ingest"].attempts == 0
    assert len(orchestra.recorder.of(IngestRequested, run_id)) == 3


async def test_later_stage_left_pending_after_its_input_was_ready_is_resent_with_that_input(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB"])
    for symbol in ("AAA", "BBB"):
        await claim(runtime, run_id, symbol, Stage.INGEST)
        await finish(runtime, run_id, symbol, Stage.INGEST)
        await record_raw(runtime, run_id, symbol)
    await claim(runtime, run_id, "BBB", Stage.PROCESS)
    await finish(runtime, run_id, "BBB", Stage.PROCESS)
    await record_features(runtime, run_id, "BBB")
    # AAA's raw-data-ready and BBB's features-ready events were lost.
    await _age(runtime, run_id, seconds=121)

    assert await _reaper(orchestra).reap_timed_out_tasks() == 2

    tasks = await task_rows(runtime, run_id)
    assert (tasks["AAA", "process"].state, tasks["AAA", "process"].attempts) == ("PENDING", 1)
    assert (tasks["BBB", "predict"].state, tasks["BBB", "predict"].attempts) == ("PENDING", 1)
    # AAA's predict waits for its process stage: nothing of it is lost.
    assert (tasks["AAA", "predict"].state, tasks["AAA", "predict"].attempts) == ("PENDING", 0)

    async def resent() -> bool:
        return bool(
            orchestra.recorder.of(RawDataReady, run_id)
            and orchestra.recorder.of(FeaturesReady, run_id)
        )

    await eventually(resent)
    [(raw_symbol, raw)] = orchestra.recorder.of(RawDataReady, run_id)
    assert raw_symbol == "AAA"
    assert isinstance(raw, RawDataReady)
    assert raw.bars.uri.endswith(f"{run_id}/AAA/bars.parquet")
    [(features_symbol, features)] = orchestra.recorder.of(FeaturesReady, run_id)
    assert features_symbol == "BBB"
    assert isinstance(features, FeaturesReady)
    assert features.features.uri.endswith(f"{run_id}/BBB.parquet")


async def test_pending_task_resent_up_to_the_attempt_limit_fails_and_its_run_settles(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA"])
    for _ in range(orchestra.settings.handler_max_attempts):
        await _age(runtime, run_id, seconds=121)
        assert await _reaper(orchestra).reap_timed_out_tasks() == 1

    tasks = await task_rows(runtime, run_id)
    assert tasks["AAA", "ingest"].state == "FAILED"
    assert tasks["AAA", "ingest"].attempts == 3
    assert tasks["AAA", "process"].state == "SKIPPED"
    assert tasks["AAA", "predict"].state == "SKIPPED"
    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    assert run["state"] == "FAILED"
    assert run["failed"][0]["last_error"] == "not picked up in time after 3 attempts"
    [alert] = orchestra.recorder.alerts
    assert alert.key == f"run-ended:{run_id}"
