"""Bad features events sent to prediction: bad JSON, a schema version it does not read, an event
of the wrong type, a reference to a missing object and a checksum mismatch are dead-lettered with
their reason, and the event after them is predicted."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.cli.embedded import PipelineSettings
from marketsense.common.db.models import FeatureSet, Prediction
from marketsense.common.events import FeaturesReady, IngestRequested, ObjectRef
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.states import Stage, TaskState
from marketsense.prediction.app import create_component as prediction
from tests.bad_events_support import (
    BACKENDS,
    MISPLACED,
    NOT_JSON,
    UNREADABLE,
    UNSUPPORTED,
    backend_settings,
    dlq_errors,
    event,
    find_task,
    missing,
    running,
    send,
    tampered,
    task_state,
    unused_trading_day,
)
from tests.conftest import eventually
from tests.model_registry_rows import processed_run


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> PipelineSettings:
    """Embedded default (SQLite, folder, in-process bus) or the real servers."""
    return backend_settings(request, tmp_path, prefix)


@pytest.fixture
def as_of() -> dt.date:
    """A trading day no other test's run uses: a day may have only one live run."""
    return unused_trading_day()


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
            rows["GONE"].uri = missing(refs["GONE"]).uri
            rows["TAMPERED"].sha256 = tampered(refs["TAMPERED"]).sha256

        def features(ref: ObjectRef) -> FeaturesReady:
            return FeaturesReady(as_of=as_of, feature_schema=FEATURE_SCHEMA, features=ref)

        await send(
            runtime,
            topic,
            [
                NOT_JSON,
                event(features(refs["GOOD"]), run_id=run_id, symbol="GOOD", version=99),
                event(IngestRequested(as_of=as_of, lookback_days=30), run_id=run_id, symbol="GOOD"),
                event(features(refs["GONE"]), run_id=run_id, symbol="GONE"),
                event(features(refs["TAMPERED"]), run_id=run_id, symbol="TAMPERED"),
                event(features(refs["GOOD"]), run_id=run_id, symbol="GOOD"),
            ],
        )

        async def predicted() -> bool:
            return await task_state(runtime, run_id, "GOOD", Stage.PREDICT) == TaskState.SUCCESS

        await eventually(predicted, timeout=60)
        await eventually(lambda: len(dead) == 5)
        failed = {
            symbol: await find_task(runtime, run_id, symbol, Stage.PREDICT)
            for symbol in ("GONE", "TAMPERED")
        }
        async with runtime.database.session() as session:
            predictions = list(
                await session.scalars(select(Prediction.symbol).where(Prediction.run_id == run_id))
            )

    assert predictions == ["GOOD"]
    reasons = dlq_errors(dead)
    assert reasons[0].startswith(UNREADABLE), reasons
    assert UNSUPPORTED in reasons[1], reasons
    assert MISPLACED in reasons[2], reasons
    assert reasons[3].startswith("ObjectNotFound: no object at"), reasons
    assert reasons[4].startswith("ObjectIntegrityError: checksum mismatch"), reasons
    assert {symbol: task and task.state for symbol, task in failed.items()} == {
        "GONE": TaskState.FAILED,
        "TAMPERED": TaskState.FAILED,
    }
