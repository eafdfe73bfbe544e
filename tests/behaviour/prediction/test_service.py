"""Prediction logic on every database and object store: scoring a run's processed features, never
another run's, and reading predictions back (latest, pages)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, Prediction, Run, Task
from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.events import FeaturesReady, PredictionsReady
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.common.store import ObjectStore
from marketsense.models.predictor import OnnxPredictor
from marketsense.prediction.service import (
    PredictorHolder,
    latest_prediction,
    list_predictions,
    predict_symbol,
    processed_features,
)
from tests.artifacts import small_predictor
from tests.model_registry_rows import processed_run
from tests.service_support import queued_events, service_runtime, task_of

DAY = dt.date(2026, 11, 20)
EARLIER = DAY - dt.timedelta(days=1)


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """Prediction's runtime on an empty database and object store of each kind."""
    async with service_runtime(
        service="prediction", database_url=database_url, store=store, home=tmp_path / "home"
    ) as started:
        yield started


@pytest.fixture
def holder(tmp_path: Path) -> PredictorHolder:
    """The served predictor: a small one, version 3."""
    served = PredictorHolder()
    served.current = OnnxPredictor(small_predictor(tmp_path / "served", version="3"))
    return served


async def predict(runtime: Runtime, holder: PredictorHolder, run_id: str, symbol: str) -> None:
    """Score one symbol of a run as the `features.ready` handler does."""
    async with runtime.database.session() as session:
        stored = await session.scalar(
            select(FeatureSet).where(FeatureSet.run_id == run_id, FeatureSet.symbol == symbol)
        )
    assert stored is not None
    event = FeaturesReady(as_of=DAY, feature_schema=FEATURE_SCHEMA, features=stored.ref())
    await predict_symbol(
        runtime=runtime, holder=holder, threshold=0.05, run_id=run_id, symbol=symbol, event=event
    )


async def test_a_symbol_is_scored_stored_and_announced_once(
    runtime: Runtime, holder: PredictorHolder
) -> None:
    run_id, rows = await processed_run(runtime, symbols=["AAA"], as_of=DAY, announce=False)

    await predict(runtime, holder, run_id, "AAA")
    await predict(runtime, holder, run_id, "AAA")  # the event delivered twice

    async with runtime.database.session() as session:
        [stored] = list(await session.scalars(select(Prediction)))
    predictor = holder.current
    assert predictor is not None
    features = rows["AAA"][predictor.manifest.features].to_numpy("float32")
    assert stored.prob_up == pytest.approx(float(predictor.predict_up(features)[0]), abs=1e-6)
    assert (stored.run_id, stored.as_of, stored.model_version) == (run_id, DAY, "3")
    task = await task_of(runtime, run_id=run_id, symbol="AAA", stage=Stage.PREDICT)
    assert task.state == TaskState.SUCCESS
    [(envelope, event)] = await queued_events(runtime)
    assert isinstance(event, PredictionsReady)
    assert (envelope.run_id, event.prediction_id, event.model_version) == (run_id, stored.id, "3")


async def test_nothing_is_scored_until_a_predictor_is_loaded(runtime: Runtime) -> None:
    run_id, _ = await processed_run(runtime, symbols=["AAA"], as_of=DAY, announce=False)

    with pytest.raises(RetryableError, match="no predictor is loaded yet"):
        await predict(runtime, PredictorHolder(), run_id, "AAA")


async def test_features_of_another_schema_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    holder = PredictorHolder()
    holder.current = OnnxPredictor(small_predictor(tmp_path / "p", feature_schema="words-v2"))
    run_id, _ = await processed_run(runtime, symbols=["AAA"], as_of=DAY, announce=False)

    with pytest.raises(NonRetryableError, match="reads words-v2"):
        await predict(runtime, holder, run_id, "AAA")
    task = await task_of(runtime, run_id=run_id, symbol="AAA", stage=Stage.PREDICT)
    assert task.state == TaskState.PENDING


async def test_features_not_marked_processed_for_the_run_are_never_read(
    runtime: Runtime,
) -> None:
    run_id, _ = await processed_run(runtime, symbols=["AAA"], as_of=DAY, announce=False)
    async with runtime.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.run_id == run_id, Task.stage == Stage.PROCESS)
            .values(state=TaskState.RUNNING)
        )

    async with runtime.database.session() as session:
        with pytest.raises(NonRetryableError, match="not marked processed for run"):
            await processed_features(
                session, run_id=run_id, symbol="AAA", feature_schema=FEATURE_SCHEMA
            )
        with pytest.raises(NonRetryableError, match="not marked processed"):
            await processed_features(
                session, run_id=str(uuid.uuid4()), symbol="AAA", feature_schema=FEATURE_SCHEMA
            )


async def test_features_of_another_schema_are_not_taken_for_the_ones_asked(
    runtime: Runtime,
) -> None:
    run_id, _ = await processed_run(runtime, symbols=["AAA"], as_of=DAY, announce=False)

    async with runtime.database.session() as session:
        found = await processed_features(
            session, run_id=run_id, symbol="AAA", feature_schema=FEATURE_SCHEMA
        )
        with pytest.raises(NonRetryableError, match="no words-v2 features recorded for AAA"):
            await processed_features(
                session, run_id=run_id, symbol="AAA", feature_schema="words-v2"
            )
    assert (found.run_id, found.symbol, found.feature_schema) == (run_id, "AAA", FEATURE_SCHEMA)


async def store_predictions(runtime: Runtime, rows: list[tuple[str, dt.date, str]]) -> list[int]:
    """Predictions (symbol, day, version of `baseline`), one run per day; their ids in order."""
    runs = {as_of: str(uuid.uuid4()) for _, as_of, _ in rows}
    async with runtime.transaction() as session:
        for as_of, run_id in runs.items():
            session.add(Run(id=run_id, as_of=as_of, state=RunState.SUCCESS, symbols=1))
        await session.flush()
        made = []
        for symbol, as_of, version in rows:
            made.append(
                Prediction(
                    run_id=runs[as_of],
                    symbol=symbol,
                    as_of=as_of,
                    horizon_days=1,
                    prob_up=0.5,
                    signal="flat",
                    model_name="baseline",
                    model_version=version,
                )
            )
            session.add(made[-1])
            await session.flush()  # ids in the order given
        return [p.id for p in made]


async def test_latest_prefers_the_served_version_on_the_latest_day_only(
    runtime: Runtime,
) -> None:
    await store_predictions(
        runtime,
        [
            ("AAA", EARLIER, "5"),
            ("AAA", DAY, "5"),
            ("AAA", DAY, "4"),
            ("BBB", EARLIER, "5"),
            ("BBB", DAY, "4"),
            ("BBB", DAY, "3"),
        ],
    )

    async with runtime.database.session() as session:

        async def latest(symbol: str, preferred: tuple[str, str] | None) -> tuple[object, ...]:
            found = await latest_prediction(session=session, symbol=symbol, preferred=preferred)
            return () if found is None else (found.as_of, found.model_version)

        assert await latest("AAA", ("baseline", "5")) == (DAY, "5")
        assert await latest("AAA", None) == (DAY, "4")  # the newest row of the latest day
        assert await latest("BBB", ("baseline", "5")) == (DAY, "3")  # 5 did not score that day
        assert await latest("BBB", ("other-model", "4")) == (DAY, "3")
        assert await latest("CCC", ("baseline", "5")) == ()


async def test_listing_pages_in_id_order_with_filters(runtime: Runtime) -> None:
    ids = await store_predictions(
        runtime, [(s, day, "1") for day in (EARLIER, DAY) for s in ("AAA", "BBB", "CCC")]
    )

    async with runtime.database.session() as session:

        async def page(
            *,
            as_of: dt.date | None = None,
            symbols: list[str] | None = None,
            after_id: int | None = None,
            limit: int = 100,
        ) -> list[int]:
            rows = await list_predictions(
                session=session, as_of=as_of, symbols=symbols, after_id=after_id, limit=limit
            )
            return [row.id for row in rows]

        assert await page() == ids
        assert await page(limit=2) == ids[:2]
        assert await page(after_id=ids[1], limit=2) == ids[2:4]
        assert await page(after_id=ids[-1]) == []
        assert await page(as_of=DAY) == ids[3:]
        assert await page(symbols=["AAA", "CCC"]) == [ids[0], ids[2], ids[3], ids[5]]
        assert await page(symbols=[]) == ids  # no filter, as the route sends none
        assert await page(as_of=EARLIER, symbols=["BBB"], after_id=ids[0]) == [ids[1]]
