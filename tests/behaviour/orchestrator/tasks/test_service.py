"""Task rows of a run: each stage's input rebuilt from what the run recorded, failed tasks
re-queued with their input in one transaction, open tasks cancelled or skipped, overdue and
stranded tasks found, tasks counted."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, OutboxMessage, RawObject, Run, Task
from marketsense.common.events import FeaturesReady, IngestRequested, RawDataReady, parse_event
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.orchestrator.tasks.service import (
    MissingInput,
    cancel_open_tasks,
    failed_tasks,
    live_task_counts,
    open_task_count,
    overdue_tasks,
    requeue_task,
    skip_open_tasks,
    stage_counts,
    stage_input,
    stranded_tasks,
    unskip_tasks,
)
from tests.conftest import TEST_AS_OF

LOOKBACK = 30


async def _run(
    database: Database,
    run_id: str,
    tasks: dict[tuple[str, Stage], TaskState],
    *,
    state: RunState = RunState.RUNNING,
    as_of: dt.date = TEST_AS_OF,
) -> None:
    """A run in `state` with the given tasks."""
    async with database.session() as session:
        session.add(Run(id=run_id, as_of=as_of, state=state, symbols=len(tasks)))
        await session.flush()
        session.add_all(
            Task(run_id=run_id, symbol=symbol, stage=stage, state=task_state, attempts=1)
            for (symbol, stage), task_state in tasks.items()
        )
        await session.commit()


def _raw(run_id: str, symbol: str, kind: str, rows: int) -> RawObject:
    return RawObject(
        run_id=run_id,
        symbol=symbol,
        as_of=TEST_AS_OF,
        kind=kind,
        uri=f"file:///raw/{run_id}/{symbol}/{kind}.parquet",
        sha256=("b" if kind == "bars" else "e") * 64,
        size=rows * 10,
        rows=rows,
    )


def _features(run_id: str, symbol: str, schema: str = FEATURE_SCHEMA) -> FeatureSet:
    return FeatureSet(
        run_id=run_id,
        symbol=symbol,
        as_of=TEST_AS_OF,
        feature_schema=schema,
        uri=f"file:///features/{run_id}/{symbol}-{schema}.parquet",
        sha256="f" * 64,
        size=200,
    )


async def _input(session: AsyncSession, run_id: str, symbol: str, stage: Stage) -> object:
    run = await session.get(Run, run_id)
    assert run is not None
    return await stage_input(session, run=run, symbol=symbol, stage=stage, lookback_days=LOOKBACK)


async def _task(session: AsyncSession, run_id: str, symbol: str, stage: Stage) -> Task:
    task = await session.scalar(
        select(Task).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
    )
    assert task is not None
    return task


def _retries(stage: Stage) -> float:
    labels = {"stage": stage.value, "reason": "test"}
    return REGISTRY.get_sample_value("marketsense_task_retries_total", labels) or 0.0


async def test_each_stages_input_is_rebuilt_from_what_the_run_recorded(database: Database) -> None:
    await _run(database, "r1", {("AAA", stage): TaskState.SUCCESS for stage in Stage})
    async with database.session() as session:
        session.add_all([_raw("r1", "AAA", "bars", 60), _raw("r1", "AAA", "texts", 4)])
        session.add_all([_features("r1", "AAA"), _features("r1", "AAA", "older-schema")])
        await session.commit()

        ingest = await _input(session, "r1", "AAA", Stage.INGEST)
        process = await _input(session, "r1", "AAA", Stage.PROCESS)
        predict = await _input(session, "r1", "AAA", Stage.PREDICT)

    assert ingest == IngestRequested(as_of=TEST_AS_OF, lookback_days=LOOKBACK)
    assert isinstance(process, RawDataReady)
    assert process.bars.uri == "file:///raw/r1/AAA/bars.parquet"
    assert process.texts is not None
    assert process.texts.sha256 == "e" * 64
    assert (process.rows, process.text_items, process.as_of) == (60, 4, TEST_AS_OF)
    assert isinstance(predict, FeaturesReady)
    assert predict.feature_schema == FEATURE_SCHEMA
    assert predict.features.uri == f"file:///features/r1/AAA-{FEATURE_SCHEMA}.parquet"


async def test_raw_data_without_texts_is_rebuilt_with_no_texts_and_zero_items(
    database: Database,
) -> None:
    await _run(database, "r1", {("AAA", Stage.PROCESS): TaskState.FAILED})
    async with database.session() as session:
        session.add(_raw("r1", "AAA", "bars", 250))
        await session.commit()
        process = await _input(session, "r1", "AAA", Stage.PROCESS)

    assert isinstance(process, RawDataReady)
    assert (process.texts, process.text_items, process.rows) == (None, 0, 250)


async def test_an_input_never_recorded_is_missing_naming_symbol_and_run(
    database: Database,
) -> None:
    await _run(database, "r1", {("AAA", Stage.PREDICT): TaskState.FAILED})
    async with database.session() as session:
        # Texts alone are no input for processing; features of another schema none for predict.
        session.add_all([_raw("r1", "AAA", "texts", 4), _features("r1", "AAA", "older-schema")])
        session.add_all([_raw("r1", "BBB", "bars", 60), _features("r1", "BBB")])
        await session.commit()

        with pytest.raises(MissingInput, match="no raw bars recorded for AAA in run r1"):
            await _input(session, "r1", "AAA", Stage.PROCESS)
        with pytest.raises(MissingInput, match="no features recorded for AAA in run r1"):
            await _input(session, "r1", "AAA", Stage.PREDICT)


async def _requeue(session: AsyncSession, run_id: str, symbol: str, stage: Stage) -> bool:
    run = await session.get(Run, run_id)
    assert run is not None
    task = await _task(session, run_id, symbol, stage)
    return await requeue_task(
        session, source="orchestrator", run=run, task=task, lookback_days=LOOKBACK, reason="test"
    )


async def test_requeue_puts_a_failed_task_back_and_queues_its_input_in_one_transaction(
    database: Database,
) -> None:
    await _run(database, "r1", {("AAA", Stage.PROCESS): TaskState.FAILED})
    async with database.session() as session:
        session.add(_raw("r1", "AAA", "bars", 60))
        await session.commit()
    before = _retries(Stage.PROCESS)

    async with database.session() as session:
        assert await _requeue(session, "r1", "AAA", Stage.PROCESS)
        await session.rollback()  # an interrupted retry leaves neither half behind
    async with database.session() as session:
        assert (await _task(session, "r1", "AAA", Stage.PROCESS)).state == TaskState.FAILED
        assert list(await session.scalars(select(OutboxMessage))) == []
        assert await _requeue(session, "r1", "AAA", Stage.PROCESS)
        await session.commit()

    async with database.session() as session:
        assert (await _task(session, "r1", "AAA", Stage.PROCESS)).state == TaskState.PENDING
        [message] = list(await session.scalars(select(OutboxMessage)))
    envelope, payload = parse_event(message.value)
    assert (message.topic, message.source) == (RawDataReady.topic, "orchestrator")
    assert (envelope.run_id, envelope.symbol) == ("r1", "AAA")
    assert isinstance(payload, RawDataReady)
    assert payload.bars.uri == "file:///raw/r1/AAA/bars.parquet"
    # The counter counts attempts, the rolled-back one too: a metric is not transactional.
    assert _retries(Stage.PROCESS) == before + 2


@pytest.mark.parametrize("state", [TaskState.SUCCESS, TaskState.PENDING, TaskState.CANCELLED])
async def test_requeue_leaves_a_task_that_moved_on_and_queues_nothing(
    database: Database, state: TaskState
) -> None:
    await _run(database, "r1", {("AAA", Stage.INGEST): state})
    async with database.session() as session:
        moved = await _requeue(session, "r1", "AAA", Stage.INGEST)
        await session.commit()
        assert moved is False
        assert (await _task(session, "r1", "AAA", Stage.INGEST)).state == state
        assert list(await session.scalars(select(OutboxMessage))) == []


async def test_requeue_without_a_recorded_input_raises_and_leaves_the_task_failed(
    database: Database,
) -> None:
    await _run(database, "r1", {("AAA", Stage.PREDICT): TaskState.FAILED})
    async with database.session() as session:
        with pytest.raises(MissingInput):
            await _requeue(session, "r1", "AAA", Stage.PREDICT)
        await session.commit()
        assert (await _task(session, "r1", "AAA", Stage.PREDICT)).state == TaskState.FAILED
        assert list(await session.scalars(select(OutboxMessage))) == []


async def test_cancelling_moves_only_pending_and_running_tasks_and_counts_them(
    database: Database,
) -> None:
    states = [TaskState.PENDING, TaskState.RUNNING, TaskState.SUCCESS, TaskState.FAILED]
    await _run(database, "r1", {(f"S{i}", Stage.INGEST): s for i, s in enumerate(states)})
    await _run(database, "r2", {("S0", Stage.INGEST): TaskState.PENDING}, as_of=dt.date(2026, 1, 5))
    async with database.session() as session:
        assert await open_task_count(session, run_id="r1") == 2
        assert await cancel_open_tasks(session, run_id="r1") == 2
        assert await cancel_open_tasks(session, run_id="r1") == 0
        await session.commit()
        assert await open_task_count(session, run_id="r1") == 0
        assert await open_task_count(session, run_id="r2") == 1
        assert await open_task_count(session, run_id="no-such-run") == 0
        rows = await session.scalars(select(Task).where(Task.run_id == "r1").order_by(Task.symbol))
        assert [t.state for t in rows] == ["CANCELLED", "CANCELLED", "SUCCESS", "FAILED"]


async def test_counts_group_a_runs_tasks_and_live_runs_tasks_by_stage_and_state(
    database: Database,
) -> None:
    live = {
        ("AAA", Stage.INGEST): TaskState.SUCCESS,
        ("AAA", Stage.PROCESS): TaskState.RUNNING,
        ("BBB", Stage.INGEST): TaskState.SUCCESS,
        ("BBB", Stage.PROCESS): TaskState.PENDING,
    }
    await _run(database, "live", live)
    pending = {("CCC", Stage.INGEST): TaskState.PENDING}
    await _run(database, "pending", pending, state=RunState.PENDING, as_of=dt.date(2026, 11, 19))
    finished = {("DDD", Stage.INGEST): TaskState.FAILED}
    await _run(database, "done", finished, state=RunState.FAILED, as_of=dt.date(2026, 11, 18))
    async with database.session() as session:
        by_stage = await stage_counts(session, run_id="live")
        across = await live_task_counts(session)
        none = await stage_counts(session, run_id="no-such-run")

    assert by_stage == {"ingest": {"SUCCESS": 2}, "process": {"RUNNING": 1, "PENDING": 1}}
    assert across == {
        ("ingest", "SUCCESS"): 2,
        ("ingest", "PENDING"): 1,
        ("process", "RUNNING"): 1,
        ("process", "PENDING"): 1,
    }
    assert none == {}


async def test_failed_tasks_are_listed_by_symbol_then_stage(database: Database) -> None:
    await _run(
        database,
        "r1",
        {
            ("BBB", Stage.INGEST): TaskState.FAILED,
            ("AAA", Stage.PROCESS): TaskState.FAILED,
            ("AAA", Stage.INGEST): TaskState.SUCCESS,
            ("CCC", Stage.PREDICT): TaskState.CANCELLED,
        },
    )
    async with database.session() as session:
        failed = await failed_tasks(session, run_id="r1")

    assert [(t.symbol, t.stage) for t in failed] == [("AAA", "process"), ("BBB", "ingest")]


async def test_overdue_tasks_are_running_tasks_of_running_runs_unchanged_since_the_cutoff(
    database: Database,
) -> None:
    now = dt.datetime.now(dt.UTC)
    await _run(
        database,
        "r1",
        {
            ("OLD", Stage.INGEST): TaskState.RUNNING,
            ("NEW", Stage.INGEST): TaskState.RUNNING,
            ("IDLE", Stage.INGEST): TaskState.PENDING,
        },
    )
    cancelled = {("GONE", Stage.PREDICT): TaskState.RUNNING}
    await _run(database, "over", cancelled, state=RunState.CANCELLED, as_of=dt.date(2026, 11, 19))
    async with database.session() as session:
        for run_id, symbol, minutes in (
            ("r1", "OLD", 10),
            ("r1", "IDLE", 10),
            ("over", "GONE", 10),
        ):
            task = await session.scalar(
                select(Task).where(Task.run_id == run_id, Task.symbol == symbol)
            )
            assert task is not None
            task.updated_at = now - dt.timedelta(minutes=minutes)
        await session.commit()
        overdue = await overdue_tasks(session, cutoff=now - dt.timedelta(minutes=5))
        none_yet = await overdue_tasks(session, cutoff=now - dt.timedelta(minutes=20))

    assert overdue == [("r1", "OLD", Stage.INGEST)]
    assert none_yet == []


async def test_stranded_tasks_are_pending_with_their_input_ready_and_their_stage_idle(
    database: Database,
) -> None:
    # Past one look-up chunk of symbols, so every chunk is read.
    symbols = [f"S{i:04d}" for i in range(1200)]
    ingested = set(symbols[::3])
    tasks = {(s, Stage.INGEST): TaskState.SUCCESS for s in ingested}
    tasks |= {(s, Stage.INGEST): TaskState.PENDING for s in symbols if s not in ingested}
    tasks |= {(s, Stage.PROCESS): TaskState.PENDING for s in symbols}
    tasks |= {(s, Stage.PREDICT): TaskState.PENDING for s in symbols}
    await _run(database, "r1", tasks)
    await _run(
        database,
        "done",
        {("AAA", Stage.INGEST): TaskState.PENDING},
        state=RunState.FAILED,
        as_of=dt.date(2026, 11, 19),
    )
    now = dt.datetime.now(dt.UTC)
    async with database.session() as session:
        await session.execute(update(Run).values(updated_at=now - dt.timedelta(hours=1)))
        await session.execute(update(Task).values(updated_at=now - dt.timedelta(hours=1)))
        await session.commit()
        cutoff = now - dt.timedelta(minutes=15)
        stranded = await stranded_tasks(session, cutoff=cutoff)

        # Every PENDING ingest, and the process stage of every ingested symbol; no predict (its
        # process stage has not run), nothing of the finished run.
        assert sorted(stranded) == sorted(
            [("r1", s, Stage.INGEST) for s in symbols if s not in ingested]
            + [("r1", s, Stage.PROCESS) for s in ingested]
        )

        # One ingest task claimed lately: ingestion is busy, its queue is not stranded.
        await session.execute(
            update(Task)
            .where(Task.symbol == symbols[1], Task.stage == Stage.INGEST)
            .values(state=TaskState.RUNNING, updated_at=now)
        )
        await session.commit()
        busy = await stranded_tasks(session, cutoff=cutoff)

    assert sorted(busy) == sorted(("r1", s, Stage.PROCESS) for s in ingested)


async def test_skipped_tasks_end_with_their_run_and_come_back_for_a_retry(
    database: Database,
) -> None:
    await _run(
        database,
        "r1",
        {
            ("AAA", Stage.INGEST): TaskState.FAILED,
            ("AAA", Stage.PROCESS): TaskState.PENDING,
            ("AAA", Stage.PREDICT): TaskState.PENDING,
            ("BBB", Stage.PREDICT): TaskState.SUCCESS,
            ("CCC", Stage.PREDICT): TaskState.PENDING,
        },
    )
    async with database.session() as session:
        assert await skip_open_tasks(session, run_id="r1") == 3
        await session.commit()
        counts = await stage_counts(session, run_id="r1")
        assert counts["predict"] == {"SKIPPED": 2, "SUCCESS": 1}
        assert await unskip_tasks(session, run_id="r1", symbol="AAA") == 2
        await session.commit()
        assert (await _task(session, "r1", "CCC", Stage.PREDICT)).state == TaskState.SKIPPED
        assert (await _task(session, "r1", "AAA", Stage.PROCESS)).state == TaskState.PENDING
