"""Runs ending with their tasks (a failed symbol's later stages SKIPPED), and operator actions:
retry re-queues failed tasks and their skipped stages, cancel stops a run; both audited."""

from __future__ import annotations

import datetime as dt
import json

from prometheus_client import REGISTRY
from sqlalchemy import select

from marketsense.common.db.models import OperatorAction
from marketsense.common.events import FeaturesReady, IngestRequested, RawDataReady
from marketsense.common.states import Stage
from marketsense.common.tasks import Claim, claim_task
from marketsense.orchestrator.runs import flows
from marketsense.orchestrator.runs.flows import settle_run
from tests.conftest import TEST_AS_OF, eventually
from tests.orchestrator_support import (
    Orchestra,
    claim,
    fail_symbol,
    finish,
    start_run,
    succeed_all,
    succeed_symbol,
    task_rows,
)

_LATER_STAGES = [("AAA", "process"), ("AAA", "predict"), ("BBB", "predict")]
"""The stages after AAA's failed ingest and BBB's failed process."""


def _retries(stage: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "marketsense_task_retries_total", {"stage": stage, "reason": reason}
    )
    return value or 0.0


async def _audit(orchestra: Orchestra, run_id: str) -> list[OperatorAction]:
    async with orchestra.runtime.database.session() as session:
        return list(
            await session.scalars(
                select(OperatorAction)
                .where(OperatorAction.target == run_id)
                .order_by(OperatorAction.id)
            )
        )


async def test_a_run_recorded_for_a_holiday_can_still_be_retried(orchestra: Orchestra) -> None:
    # Runs stored before the exchange calendar was checked, such as this one of Thanksgiving,
    # are operated as they are: the calendar guards only new runs.
    thanksgiving = dt.date(2008, 11, 27)
    run_id = await flows.start_run(
        runtime=orchestra.runtime,
        as_of=thanksgiving,
        symbols=["AAA"],
        lookback_days=60,
        failure_threshold=0.0,
        actor="before-calendars",
    )
    await fail_symbol(orchestra.runtime, run_id, "AAA", Stage.PROCESS, "no bar on 2008-11-27")
    assert (await orchestra.api.get(f"/v1/runs/{run_id}")).json()["state"] == "FAILED"

    retried = await orchestra.api.post(f"/v1/runs/{run_id}/retry", json={"reason": "data fixed"})

    assert retried.status_code == 200, retried.text
    assert retried.json()["run"]["state"] == "RUNNING"
    assert retried.json()["run"]["as_of"] == "2008-11-27"


async def test_retry_requeues_only_the_failed_tasks_with_their_stage_input(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB", "CCC"])
    await succeed_symbol(runtime, run_id, "CCC")
    await fail_symbol(runtime, run_id, "AAA", Stage.INGEST, "rate limited", attempts=3)
    await fail_symbol(runtime, run_id, "BBB", Stage.PROCESS, "bad parquet")
    assert (await orchestra.api.get(f"/v1/runs/{run_id}")).json()["state"] == "FAILED"
    ended = await task_rows(runtime, run_id)
    # The stages after each failure ended with the run, SKIPPED.
    assert [ended[s, stage].state for s, stage in _LATER_STAGES] == ["SKIPPED"] * 3
    ingest_before, process_before = _retries("ingest", "operator"), _retries("process", "operator")

    retried = await orchestra.api.post(
        f"/v1/runs/{run_id}/retry", json={"reason": "rate limit lifted"}
    )

    assert retried.status_code == 200, retried.text
    assert retried.json()["tasks"] == 2
    run = retried.json()["run"]
    assert run["state"] == "RUNNING"
    assert run["failed"] == []
    tasks = await task_rows(runtime, run_id)
    assert tasks["AAA", "ingest"].state == "PENDING"
    assert tasks["AAA", "ingest"].attempts == 3  # attempts keep counting across retries
    assert tasks["BBB", "process"].state == "PENDING"
    assert tasks["BBB", "ingest"].state == "SUCCESS"
    assert {t.state for (s, _), t in tasks.items() if s == "CCC"} == {"SUCCESS"}
    # ... and wait again for the retried ones.
    assert [tasks[s, stage].state for s, stage in _LATER_STAGES] == ["PENDING"] * 3

    async def requeued() -> bool:
        return bool(
            orchestra.recorder.of(RawDataReady, run_id)
            and len(orchestra.recorder.of(IngestRequested, run_id)) == 4
        )

    await eventually(requeued)
    # The first three were the run's start; the fourth is AAA's retry.
    assert orchestra.recorder.of(IngestRequested, run_id)[-1][0] == "AAA"
    [(symbol, raw)] = orchestra.recorder.of(RawDataReady, run_id)
    assert symbol == "BBB"
    assert isinstance(raw, RawDataReady)
    assert raw.bars.uri.endswith(f"{run_id}/BBB/bars.parquet")
    assert (raw.rows, raw.text_items) == (60, 4)
    assert _retries("ingest", "operator") == ingest_before + 1
    assert _retries("process", "operator") == process_before + 1

    [_start, retry] = await _audit(orchestra, run_id)
    assert (retry.action, retry.actor, retry.reason) == (
        "retry",
        "publisher-key",
        "rate limit lifted",
    )
    assert sorted(json.loads(retry.details)["tasks"]) == ["AAA/ingest", "BBB/process"]

    # Nothing failed any more: a second retry has nothing to do.
    again = await orchestra.api.post(f"/v1/runs/{run_id}/retry", json={"reason": "again"})
    assert again.status_code == 409
    assert "no failed task" in again.json()["detail"]


async def test_run_ending_partial_skips_the_failed_symbols_later_stages_once(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    symbols = [f"S{i:03d}" for i in range(100)]
    run_id = await start_run(orchestra, TEST_AS_OF, symbols)
    await succeed_all(runtime, run_id, symbols[1:])
    await fail_symbol(runtime, run_id, "S000", Stage.PROCESS, "bad parquet")

    run = (await orchestra.api.get(f"/v1/runs/{run_id}")).json()
    # 1 failed of 100 is within the 1% threshold: PARTIAL, as 99 symbols predicted.
    assert run["state"] == "PARTIAL"
    assert run["stages"][2] == {"stage": "predict", "counts": {"SUCCESS": 99, "SKIPPED": 1}}
    assert [f["symbol"] for f in run["failed"]] == ["S000"]
    assert await settle_run(runtime=runtime, notifier=orchestra.recorder, run_id=run_id) is None, (
        "a settled run does not settle twice"
    )


async def test_retry_after_an_ingest_failure_lets_the_symbol_run_every_stage_again(
    orchestra: Orchestra,
) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA"])
    await fail_symbol(runtime, run_id, "AAA", Stage.INGEST, "rate limited")
    retried = await orchestra.api.post(f"/v1/runs/{run_id}/retry", json={"reason": "lifted"})
    assert retried.status_code == 200, retried.text

    await succeed_symbol(runtime, run_id, "AAA")
    assert (
        await settle_run(runtime=runtime, notifier=orchestra.recorder, run_id=run_id) == "SUCCESS"
    )


async def test_retried_run_settles_again_when_its_tasks_finish(orchestra: Orchestra) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA"])
    await fail_symbol(runtime, run_id, "AAA", Stage.PREDICT, "no model")
    retried = await orchestra.api.post(f"/v1/runs/{run_id}/retry", json={"reason": "model loaded"})
    assert retried.status_code == 200, retried.text

    async def requeued() -> bool:
        return len(orchestra.recorder.of(FeaturesReady, run_id)) == 1

    await eventually(requeued)
    [(_, features)] = orchestra.recorder.of(FeaturesReady, run_id)
    assert isinstance(features, FeaturesReady)
    assert features.features.uri.endswith(f"{run_id}/AAA.parquet")
    await claim(runtime, run_id, "AAA", Stage.PREDICT)
    await finish(runtime, run_id, "AAA", Stage.PREDICT)
    assert (
        await settle_run(runtime=runtime, notifier=orchestra.recorder, run_id=run_id) == "SUCCESS"
    )
    assert (await orchestra.api.get(f"/v1/runs/{run_id}")).json()["state"] == "SUCCESS"


async def test_cancel_stops_a_running_run_and_its_unfinished_tasks(orchestra: Orchestra) -> None:
    runtime = orchestra.runtime
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA", "BBB"])
    await succeed_symbol(runtime, run_id, "AAA")
    await claim(runtime, run_id, "BBB", Stage.INGEST)

    cancelled = await orchestra.api.post(f"/v1/runs/{run_id}/cancel", json={"reason": "bad day"})

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["tasks"] == 3  # BBB's running ingest and its two pending stages
    assert cancelled.json()["run"]["state"] == "CANCELLED"
    assert cancelled.json()["run"]["finished_at"] is not None
    tasks = await task_rows(runtime, run_id)
    assert {t.state for (s, _), t in tasks.items() if s == "BBB"} == {"CANCELLED"}
    assert {t.state for (s, _), t in tasks.items() if s == "AAA"} == {"SUCCESS"}
    # A late event for a cancelled task is skipped by the stage's handler.
    claimed = await claim_task(runtime, run_id=run_id, symbol="BBB", stage=Stage.PROCESS)
    assert claimed == Claim.NOT_WANTED
    [_start, cancel] = await _audit(orchestra, run_id)
    assert (cancel.action, cancel.actor, cancel.reason) == ("cancel", "publisher-key", "bad day")

    for action in ("cancel", "retry"):
        refused = await orchestra.api.post(f"/v1/runs/{run_id}/{action}", json={"reason": "x"})
        assert refused.status_code == 409
        assert "CANCELLED" in refused.json()["detail"]


async def test_actions_on_an_unknown_run_are_not_found_and_not_audited(
    orchestra: Orchestra,
) -> None:
    for action in ("cancel", "retry"):
        response = await orchestra.api.post(f"/v1/runs/nope/{action}", json={"reason": "x"})
        assert response.status_code == 404
        assert "nope" in response.json()["detail"]
    assert await _audit(orchestra, "nope") == []


async def test_finished_successful_run_cannot_be_retried_or_cancelled(
    orchestra: Orchestra,
) -> None:
    run_id = await start_run(orchestra, TEST_AS_OF, ["AAA"])
    await succeed_symbol(orchestra.runtime, run_id, "AAA")
    await settle_run(runtime=orchestra.runtime, notifier=orchestra.recorder, run_id=run_id)
    for action in ("cancel", "retry"):
        refused = await orchestra.api.post(f"/v1/runs/{run_id}/{action}", json={"reason": "x"})
        assert refused.status_code == 409
        assert "SUCCESS" in refused.json()["detail"]
    assert orchestra.recorder.alerts == []
