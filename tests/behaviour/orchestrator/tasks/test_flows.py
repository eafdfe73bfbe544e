"""A task whose worker was lost: failed and re-queued under the attempt limit, failed for good
(announced) at it or when its input was never recorded, left alone once it moved on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import OutboxMessage, RawObject, Run, Task
from marketsense.common.events import Payload, RawDataReady, TaskFailed, parse_event
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.orchestrator.tasks.flows import time_out_task
from tests.conftest import TEST_AS_OF
from tests.orchestrator_support import orchestrator_settings

MAX_ATTEMPTS = 3


@pytest.fixture
async def runtime(tmp_path: Path, database: Database, database_url: str) -> AsyncIterator[Runtime]:
    """The orchestrator's runtime (not started) on an empty database of each kind."""
    made = Runtime(orchestrator_settings(tmp_path, database_url), service="orchestrator")
    yield made
    await made.database.dispose()


async def _running_task(runtime: Runtime, *, stage: Stage, attempts: int, raw: bool) -> None:
    """Run r1 with AAA's `stage` task RUNNING after `attempts` claims, its raw bars recorded
    when `raw`."""
    async with runtime.transaction() as session:
        session.add(Run(id="r1", as_of=TEST_AS_OF, state=RunState.RUNNING, symbols=1))
        await session.flush()
        session.add(
            Task(run_id="r1", symbol="AAA", stage=stage, state=TaskState.RUNNING, attempts=attempts)
        )
        if raw:
            session.add(
                RawObject(
                    run_id="r1",
                    symbol="AAA",
                    as_of=TEST_AS_OF,
                    kind="bars",
                    uri="file:///raw/r1/AAA/bars.parquet",
                    sha256="b" * 64,
                    size=600,
                    rows=60,
                )
            )


async def _time_out(runtime: Runtime, stage: Stage, *, run_id: str = "r1") -> bool | None:
    return await time_out_task(
        runtime=runtime,
        run_id=run_id,
        symbol="AAA",
        stage=stage,
        max_attempts=MAX_ATTEMPTS,
        lookback_days=30,
    )


async def _outcome(runtime: Runtime) -> tuple[Task, list[Payload]]:
    """AAA's task in r1 and the events queued for the outbox."""
    async with runtime.database.session() as session:
        task = await session.scalar(select(Task).where(Task.run_id == "r1"))
        messages = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert task is not None
    return task, [parse_event(m.value)[1] for m in messages]


async def test_a_timed_out_task_under_the_attempt_limit_is_requeued_with_its_input(
    runtime: Runtime,
) -> None:
    await _running_task(runtime, stage=Stage.PROCESS, attempts=MAX_ATTEMPTS - 1, raw=True)

    assert await _time_out(runtime, Stage.PROCESS) is False

    task, events = await _outcome(runtime)
    assert task.state == TaskState.PENDING
    assert task.last_error == f"timed out after {MAX_ATTEMPTS - 1} attempts"
    [requeued] = events
    assert isinstance(requeued, RawDataReady)
    assert requeued.bars.uri == "file:///raw/r1/AAA/bars.parquet"


async def test_a_task_timing_out_at_the_attempt_limit_fails_for_good_and_is_announced(
    runtime: Runtime,
) -> None:
    await _running_task(runtime, stage=Stage.INGEST, attempts=MAX_ATTEMPTS, raw=False)

    assert await _time_out(runtime, Stage.INGEST) is True

    task, events = await _outcome(runtime)
    assert task.state == TaskState.FAILED
    assert events == [
        TaskFailed(
            stage=Stage.INGEST,
            error=f"timed out after {MAX_ATTEMPTS} attempts",
            retryable=False,
            attempts=MAX_ATTEMPTS,
        )
    ]


async def test_a_task_whose_input_was_never_recorded_fails_for_good_saying_why(
    runtime: Runtime,
) -> None:
    await _running_task(runtime, stage=Stage.PROCESS, attempts=1, raw=False)

    assert await _time_out(runtime, Stage.PROCESS) is True

    task, events = await _outcome(runtime)
    reason = "timed out after 1 attempts; cannot re-queue: no raw bars recorded for AAA in run r1"
    assert task.state == TaskState.FAILED
    assert task.last_error == reason
    [failed] = events
    assert isinstance(failed, TaskFailed)
    assert (failed.error, failed.retryable, failed.attempts) == (reason, False, 1)


@pytest.mark.parametrize("state", [TaskState.SUCCESS, TaskState.PENDING, TaskState.CANCELLED])
async def test_a_task_that_moved_on_is_left_alone(runtime: Runtime, state: TaskState) -> None:
    await _running_task(runtime, stage=Stage.INGEST, attempts=1, raw=False)
    async with runtime.transaction() as session:
        task = await session.scalar(select(Task).where(Task.run_id == "r1"))
        assert task is not None
        task.state = state

    assert await _time_out(runtime, Stage.INGEST) is None

    task, events = await _outcome(runtime)
    assert (task.state, task.last_error, events) == (state, None, [])


async def test_an_unknown_run_or_task_is_left_alone(runtime: Runtime) -> None:
    await _running_task(runtime, stage=Stage.INGEST, attempts=1, raw=False)

    assert await _time_out(runtime, Stage.INGEST, run_id="no-such-run") is None
    assert await _time_out(runtime, Stage.PREDICT) is None

    task, events = await _outcome(runtime)
    assert (task.state, events) == (TaskState.RUNNING, [])
