"""Bad events sent to each consuming service: bad JSON, a schema version it does not read, an
event of the wrong type, a reference to a missing task or object, and a checksum mismatch are
dead-lettered with their reason, and the event after them is handled.

Processing's checksum mismatch is covered by test_pipeline.py; the bus's own rules by test_bus.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketsense.cli.embedded import PipelineSettings
from marketsense.common.app import Component, create_app
from marketsense.common.bus import Outgoing, Record, Subscription
from marketsense.common.bus.base import DLQ_SUFFIX
from marketsense.common.db.models import FeatureSet, Prediction, RawObject, Run, Task
from marketsense.common.events import (
    Envelope,
    FeaturesReady,
    IngestRequested,
    ObjectRef,
    Payload,
    PredictionsReady,
    RawDataReady,
    TaskFailed,
)
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.ingestion.app import create_component as ingestion
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.orchestrator.app import create_component as orchestrator
from marketsense.prediction.app import create_component as prediction
from marketsense.processing.app import create_component as processing
from tests.backends import real_servers
from tests.conftest import INTEGRATION, eventually
from tests.model_registry_rows import processed_run

BuildComponent = Callable[[Runtime, PipelineSettings], Component]

KEY = "ONE-KEY"
"""Every event of a test shares this message key: one partition, handled in publish order."""

NOT_JSON = b'{"id": "not closed'
UNREADABLE = "UnreadableEvent: not JSON"
UNSUPPORTED = "schema version 99 is not supported"
MISPLACED = "does not belong on topic"


@pytest.fixture(params=["embedded", pytest.param("real", marks=INTEGRATION)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> PipelineSettings:
    """Embedded default (SQLite, folder, in-process bus) or the real servers; tests that need a
    model add its folder."""
    values: dict[str, object] = {"home": tmp_path / "home", "handler_retry_base_seconds": 0.01}
    if request.param == "real":
        values |= real_servers(
            database_url=request.getfixturevalue("fresh_pg_database_url"), prefix=prefix
        )
    return PipelineSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def as_of() -> dt.date:
    """A trading day no other test's run uses: a day may have only one live run."""
    # Whole weeks from a Monday plus 0-4 days: the simulated market has no weekend bars.
    weeks, weekday = divmod(uuid.uuid4().int % 2500, 5)
    return dt.date(2018, 1, 1) + dt.timedelta(weeks=weeks, days=weekday)


@contextlib.asynccontextmanager
async def running(
    settings: PipelineSettings, build: BuildComponent, topic: str
) -> AsyncIterator[tuple[Runtime, list[Record]]]:
    """One service's consumers on the settings' backends, and what lands on `topic`'s DLQ."""
    runtime = Runtime(settings, service="bad-events", relay_all=True)
    dead: list[Record] = []

    async def collect(record: Record) -> None:
        dead.append(record)

    runtime.bus.subscribe(
        Subscription(
            topic=topic + DLQ_SUFFIX, group=runtime.group("dlq-reader"), raw_handler=collect
        )
    )
    app = create_app(runtime, [build(runtime, settings)], title="bad events")
    async with app.router.lifespan_context(app):
        yield runtime, dead


def _event(payload: Payload, *, run_id: str, symbol: str, version: int | None = None) -> bytes:
    envelope = Envelope.wrap(payload, run_id=run_id, symbol=symbol)
    if version is not None:
        envelope = envelope.model_copy(update={"schema_version": version})
    return envelope.to_bytes()


async def _send(runtime: Runtime, topic: str, values: list[bytes]) -> None:
    """Publish raw values in order under one key."""
    await runtime.bus.publish_many([Outgoing(topic, value, KEY) for value in values])


def _reasons(dead: list[Record]) -> list[str]:
    return [record.header("x-dlq-error") or "" for record in dead]


async def _task(runtime: Runtime, run_id: str, symbol: str, stage: Stage) -> Task | None:
    async with runtime.database.session() as session:
        return await session.scalar(
            select(Task).where(Task.run_id == run_id, Task.symbol == symbol, Task.stage == stage)
        )


async def _task_state(runtime: Runtime, run_id: str, symbol: str, stage: Stage) -> str | None:
    task = await _task(runtime, run_id, symbol, stage)
    return None if task is None else task.state


async def _new_run(
    runtime: Runtime, *, as_of: dt.date, tasks: dict[str, dict[Stage, TaskState]]
) -> str:
    """A RUNNING run with the given tasks per symbol."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=as_of, state=RunState.RUNNING, symbols=len(tasks)))
        await session.flush()
        for symbol, stages in tasks.items():
            for stage, state in stages.items():
                session.add(Task(run_id=run_id, symbol=symbol, stage=stage, state=state))
    return run_id


def _missing(ref: ObjectRef) -> ObjectRef:
    """A reference like `ref` to an object that was never stored."""
    return ObjectRef(uri=ref.uri.replace(".parquet", "-gone.parquet"), sha256=ref.sha256, size=1)


def _tampered(ref: ObjectRef) -> ObjectRef:
    """`ref` with a checksum its bytes do not have."""
    return ObjectRef(uri=ref.uri, sha256="0" * 64, size=ref.size)


async def test_ingestion_dead_letters_bad_requests_and_ingests_the_next_one(
    settings: PipelineSettings, as_of: dt.date
) -> None:
    topic = IngestRequested.topic
    async with running(settings, ingestion, topic) as (runtime, dead):
        run_id = await _new_run(
            runtime, as_of=as_of, tasks={"GOOD": {Stage.INGEST: TaskState.PENDING}}
        )
        request = IngestRequested(as_of=as_of, lookback_days=30)
        await _send(
            runtime,
            topic,
            [
                NOT_JSON,
                _event(request, run_id=run_id, symbol="GOOD", version=99),
                _event(
                    RawDataReady(
                        as_of=as_of,
                        bars=ObjectRef(uri="file:///x", sha256="0" * 64, size=0),
                        rows=0,
                    ),
                    run_id=run_id,
                    symbol="GOOD",
                ),
                _event(request, run_id=str(uuid.uuid4()), symbol="NOTASK"),
                _event(request, run_id=run_id, symbol="GOOD"),
            ],
        )

        async def ingested() -> bool:
            return await _task_state(runtime, run_id, "GOOD", Stage.INGEST) == TaskState.SUCCESS

        await eventually(ingested, timeout=60)
        await eventually(lambda: len(dead) == 4)
        async with runtime.database.session() as session:
            raw = await session.scalar(
                select(func.count()).select_from(RawObject).where(RawObject.run_id == run_id)
            )

    assert raw is not None
    assert raw >= 1  # bars, and texts when the source has any
    reasons = _reasons(dead)
    assert reasons[0].startswith(UNREADABLE), reasons
    assert UNSUPPORTED in reasons[1], reasons
    assert MISPLACED in reasons[2], reasons
    assert reasons[3].startswith("NonRetryableError: no ingest task for run"), reasons
    assert {record.header("x-dlq-original-topic") for record in dead} == {
        runtime.bus.topic_name(topic)
    }


async def _stored_bars(runtime: Runtime, *, run_id: str, as_of: dt.date, symbol: str) -> ObjectRef:
    bars = SimulatedMarket(seed=7).daily_bars(symbol, as_of=as_of, days=60)
    return await runtime.store.put(f"raw/test/{run_id}/{symbol}.parquet", to_parquet_bytes(bars))


async def test_processing_dead_letters_bad_raw_data_events_and_processes_the_next_one(
    settings: PipelineSettings, as_of: dt.date, sentiment_model_dir: Path
) -> None:
    topic = RawDataReady.topic
    settings = settings.model_copy(update={"sentiment_model_path": sentiment_model_dir})
    async with running(settings, processing, topic) as (runtime, dead):
        ingested = {Stage.INGEST: TaskState.SUCCESS, Stage.PROCESS: TaskState.PENDING}
        run_id = await _new_run(runtime, as_of=as_of, tasks={"GONE": ingested, "GOOD": ingested})
        bars = await _stored_bars(runtime, run_id=run_id, as_of=as_of, symbol="GOOD")
        good = RawDataReady(as_of=as_of, bars=bars, rows=60)
        await _send(
            runtime,
            topic,
            [
                NOT_JSON,
                _event(good, run_id=run_id, symbol="GOOD", version=99),
                _event(
                    IngestRequested(as_of=as_of, lookback_days=30), run_id=run_id, symbol="GOOD"
                ),
                _event(
                    RawDataReady(as_of=as_of, bars=_missing(bars), rows=60),
                    run_id=run_id,
                    symbol="GONE",
                ),
                _event(good, run_id=run_id, symbol="GOOD"),
            ],
        )

        async def processed() -> bool:
            return await _task_state(runtime, run_id, "GOOD", Stage.PROCESS) == TaskState.SUCCESS

        await eventually(processed, timeout=60)
        await eventually(lambda: len(dead) == 4)
        gone = await _task(runtime, run_id, "GONE", Stage.PROCESS)

    reasons = _reasons(dead)
    assert reasons[0].startswith(UNREADABLE), reasons
    assert UNSUPPORTED in reasons[1], reasons
    assert MISPLACED in reasons[2], reasons
    assert reasons[3].startswith("ObjectNotFound: no object at"), reasons
    assert gone is not None
    assert gone.state == TaskState.FAILED
    assert (gone.last_error or "").startswith("ObjectNotFound")


async def test_prediction_dead_letters_bad_features_events_and_predicts_the_next_one(
    settings: PipelineSettings, as_of: dt.date, predictor_dir: Path
) -> None:
    topic = FeaturesReady.topic
    settings = settings.model_copy(update={"predictor_path": predictor_dir})
    async with running(settings, prediction, topic) as (runtime, dead):
        run_id, _rows = await processed_run(
            runtime, symbols=["GONE", "TAMPERED", "GOOD"], as_of=as_of, announce=False
        )
        # Prediction reads the features its database row names, so break the rows.
        async with runtime.transaction() as session:
            rows = {
                row.symbol: row
                for row in await session.scalars(
                    select(FeatureSet).where(FeatureSet.run_id == run_id)
                )
            }
            refs = {
                symbol: ObjectRef(uri=row.uri, sha256=row.sha256, size=row.size)
                for symbol, row in rows.items()
            }
            rows["GONE"].uri = _missing(refs["GONE"]).uri
            rows["TAMPERED"].sha256 = _tampered(refs["TAMPERED"]).sha256

        def features(ref: ObjectRef) -> FeaturesReady:
            return FeaturesReady(as_of=as_of, feature_schema=FEATURE_SCHEMA, features=ref)

        await _send(
            runtime,
            topic,
            [
                NOT_JSON,
                _event(features(refs["GOOD"]), run_id=run_id, symbol="GOOD", version=99),
                _event(
                    IngestRequested(as_of=as_of, lookback_days=30), run_id=run_id, symbol="GOOD"
                ),
                _event(features(refs["GONE"]), run_id=run_id, symbol="GONE"),
                _event(features(refs["TAMPERED"]), run_id=run_id, symbol="TAMPERED"),
                _event(features(refs["GOOD"]), run_id=run_id, symbol="GOOD"),
            ],
        )

        async def predicted() -> bool:
            return await _task_state(runtime, run_id, "GOOD", Stage.PREDICT) == TaskState.SUCCESS

        await eventually(predicted, timeout=60)
        await eventually(lambda: len(dead) == 5)
        failed = {
            symbol: await _task(runtime, run_id, symbol, Stage.PREDICT)
            for symbol in ("GONE", "TAMPERED")
        }
        async with runtime.database.session() as session:
            predictions = list(
                await session.scalars(select(Prediction.symbol).where(Prediction.run_id == run_id))
            )

    assert predictions == ["GOOD"]
    reasons = _reasons(dead)
    assert reasons[0].startswith(UNREADABLE), reasons
    assert UNSUPPORTED in reasons[1], reasons
    assert MISPLACED in reasons[2], reasons
    assert reasons[3].startswith("ObjectNotFound: no object at"), reasons
    assert reasons[4].startswith("ObjectIntegrityError: checksum mismatch"), reasons
    assert {symbol: task and task.state for symbol, task in failed.items()} == {
        "GONE": TaskState.FAILED,
        "TAMPERED": TaskState.FAILED,
    }


@pytest.mark.parametrize("topic", [PredictionsReady.topic, TaskFailed.topic])
async def test_orchestrator_dead_letters_bad_progress_events_and_settles_on_the_next_one(
    settings: PipelineSettings, as_of: dt.date, topic: str
) -> None:
    async with running(settings, orchestrator, topic) as (runtime, dead):
        run_id = await _new_run(
            runtime,
            as_of=as_of,
            tasks={"GOOD": {stage: TaskState.SUCCESS for stage in Stage}},
        )
        finished: Payload = (
            PredictionsReady(as_of=as_of, prediction_id=1, model_name="m", model_version="1")
            if topic == PredictionsReady.topic
            else TaskFailed(stage=Stage.PREDICT, error="test", retryable=False, attempts=1)
        )
        await _send(
            runtime,
            topic,
            [
                NOT_JSON,
                _event(finished, run_id=run_id, symbol="GOOD", version=99),
                _event(
                    IngestRequested(as_of=as_of, lookback_days=30), run_id=run_id, symbol="GOOD"
                ),
                _event(finished, run_id=run_id, symbol="GOOD"),
            ],
        )

        async def settled() -> bool:
            async with runtime.database.session() as session:
                run = await session.get(Run, run_id)
            return run is not None and run.state == RunState.SUCCESS

        await eventually(settled, timeout=60)
        await eventually(lambda: len(dead) == 3)

    reasons = _reasons(dead)
    assert reasons[0].startswith(UNREADABLE), reasons
    assert UNSUPPORTED in reasons[1], reasons
    assert MISPLACED in reasons[2], reasons
