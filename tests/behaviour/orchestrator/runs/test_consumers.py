"""Bad progress events sent to the orchestrator: bad JSON, a schema version it does not read and
an event of the wrong type are dead-lettered with their reason, and the event after them settles
the run.

The other services' bad events are in their own suites' test_consumers.py; the bus's own rules
in test_bus.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from marketsense.cli.embedded import PipelineSettings
from marketsense.common.db.models import Run
from marketsense.common.events import IngestRequested, Payload, PredictionsReady, TaskFailed
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.orchestrator.app import create_component as orchestrator
from tests.bad_events_support import (
    BACKENDS,
    MISPLACED,
    NOT_JSON,
    UNREADABLE,
    UNSUPPORTED,
    backend_settings,
    dlq_errors,
    event,
    new_run,
    running,
    send,
    unused_trading_day,
)
from tests.conftest import eventually


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> PipelineSettings:
    """Embedded default (SQLite, folder, in-process bus) or the real servers."""
    return backend_settings(request, tmp_path, prefix)


@pytest.fixture
def as_of() -> dt.date:
    """A trading day no other test's run uses: a day may have only one live run."""
    return unused_trading_day()


@pytest.mark.parametrize("topic", [PredictionsReady.topic, TaskFailed.topic])
async def test_orchestrator_dead_letters_bad_progress_events_and_settles_on_the_next_one(
    settings: PipelineSettings, as_of: dt.date, topic: str
) -> None:
    async with running(settings, orchestrator, topic) as (runtime, dead):
        run_id = await new_run(
            runtime,
            as_of=as_of,
            tasks={"GOOD": {stage: TaskState.SUCCESS for stage in Stage}},
        )
        finished: Payload = (
            PredictionsReady(as_of=as_of, prediction_id=1, model_name="m", model_version="1")
            if topic == PredictionsReady.topic
            else TaskFailed(stage=Stage.PREDICT, error="test", retryable=False, attempts=1)
        )
        await send(
            runtime,
            topic,
            [
                NOT_JSON,
                event(finished, run_id=run_id, symbol="GOOD", version=99),
                event(IngestRequested(as_of=as_of, lookback_days=30), run_id=run_id, symbol="GOOD"),
                event(finished, run_id=run_id, symbol="GOOD"),
            ],
        )

        async def settled() -> bool:
            async with runtime.database.session() as session:
                run = await session.get(Run, run_id)
            return run is not None and run.state == RunState.SUCCESS

        await eventually(settled, timeout=60)
        await eventually(lambda: len(dead) == 3)

    reasons = dlq_errors(dead)
    assert reasons[0].startswith(UNREADABLE), reasons
    assert UNSUPPORTED in reasons[1], reasons
    assert MISPLACED in reasons[2], reasons
