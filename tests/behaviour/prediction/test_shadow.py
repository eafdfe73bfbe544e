"""Shadow scoring on every database and object store: a loaded challenger scores the same
feature rows as production, its rows stored in the same transaction under its own version,
while the announcement, the latest prediction and a version-filtered list stay production's."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, Prediction
from marketsense.common.events import FeaturesReady, PredictionsReady
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.models.predictor import OnnxPredictor
from marketsense.prediction.scoring import signal_for
from marketsense.prediction.service import (
    PredictorHolder,
    latest_prediction,
    list_predictions,
    predict_symbol,
)
from marketsense.prediction.shadow import SHADOW_PREDICTIONS
from tests.artifacts import small_predictor
from tests.model_registry_rows import processed_run
from tests.service_support import queued_events, service_runtime

DAY = dt.date(2026, 11, 20)
SYMBOLS = ["AAA", "BBB", "CCC"]
THRESHOLD = 0.05


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """Prediction's runtime on an empty database and object store of each kind."""
    async with service_runtime(
        service="prediction", database_url=database_url, store=store, home=tmp_path / "home"
    ) as started:
        yield started


def holding(folder: Path) -> PredictorHolder:
    """A slot holding the predictor in `folder`."""
    held = PredictorHolder()
    held.current = OnnxPredictor(folder)
    return held


async def predict_run(
    runtime: Runtime, served: PredictorHolder, shadow: PredictorHolder, run_id: str
) -> None:
    """Score each symbol of a run as the `features.ready` handler does."""
    async with runtime.database.session() as session:
        stored = list(await session.scalars(select(FeatureSet).where(FeatureSet.run_id == run_id)))
    for features in stored:
        event = FeaturesReady(as_of=DAY, feature_schema=FEATURE_SCHEMA, features=features.ref())
        await predict_symbol(
            runtime=runtime,
            holder=served,
            threshold=THRESHOLD,
            run_id=run_id,
            symbol=features.symbol,
            event=event,
            shadow=shadow,
        )


def shadow_count(version: str) -> float:
    """`marketsense_shadow_predictions_total` of the test model's version."""
    return float(SHADOW_PREDICTIONS.labels("prediction", "small-predictor", version)._value.get())


async def test_a_challenger_scores_each_run_beside_production_which_alone_is_served(
    runtime: Runtime, tmp_path: Path
) -> None:
    served = holding(small_predictor(tmp_path / "v3", version="3", seed=11))
    shadow = holding(small_predictor(tmp_path / "v4", version="4", seed=12))
    run_id, rows = await processed_run(runtime, symbols=SYMBOLS, as_of=DAY, announce=False)
    counted = shadow_count("4")

    await predict_run(runtime, served, shadow, run_id)
    await predict_run(runtime, served, shadow, run_id)  # every event delivered twice

    async with runtime.database.session() as session:
        stored = list(await session.scalars(select(Prediction).order_by(Prediction.id)))
        latest = {
            s: await latest_prediction(
                session=session, symbol=s, preferred=("small-predictor", "3")
            )
            for s in SYMBOLS
        }
        listed = await list_predictions(
            session=session, as_of=DAY, symbols=None, after_id=None, limit=10, model_version="3"
        )
    by_version = {(p.symbol, p.model_version): p for p in stored}
    assert len(stored) == 2 * len(SYMBOLS) == len(by_version)
    for version, held in (("3", served), ("4", shadow)):
        predictor = held.current
        assert predictor is not None
        for symbol in SYMBOLS:
            row = by_version[(symbol, version)]
            features = rows[symbol][predictor.manifest.features].to_numpy("float32")
            expected = float(predictor.predict_up(features)[0])
            assert row.prob_up == pytest.approx(expected, abs=1e-6)
            assert row.signal == signal_for(row.prob_up, threshold=THRESHOLD)
            assert (row.run_id, row.as_of) == (run_id, DAY)
    # Two versions that score alike would make the test pass without shadow scoring.
    assert {by_version[(s, "3")].prob_up for s in SYMBOLS} != {
        by_version[(s, "4")].prob_up for s in SYMBOLS
    }
    assert {p.model_version for p in latest.values() if p is not None} == {"3"}
    assert sorted(p.symbol for p in listed) == SYMBOLS
    assert {p.model_version for p in listed} == {"3"}
    events = [e for _, e in await queued_events(runtime) if isinstance(e, PredictionsReady)]
    assert len(events) == len(SYMBOLS)
    assert {e.model_version for e in events} == {"3"}
    # Counted once: the redelivered events found their tasks done.
    assert shadow_count("4") - counted == len(SYMBOLS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("store", ["file"], indirect=True)
async def test_a_challenger_of_the_served_version_or_other_features_adds_no_row(
    runtime: Runtime, tmp_path: Path
) -> None:
    served = holding(small_predictor(tmp_path / "v3", version="3"))
    same = holding(small_predictor(tmp_path / "again", version="3", seed=12))
    other = holding(small_predictor(tmp_path / "v5", version="5", feature_schema="words-v2"))

    run_id, _ = await processed_run(runtime, symbols=SYMBOLS[:2], as_of=DAY, announce=False)
    async with runtime.database.session() as session:
        feature_sets = list(await session.scalars(select(FeatureSet).order_by(FeatureSet.symbol)))
    for features, shadow in zip(feature_sets, (same, other), strict=True):
        event = FeaturesReady(as_of=DAY, feature_schema=FEATURE_SCHEMA, features=features.ref())
        await predict_symbol(
            runtime=runtime,
            holder=served,
            threshold=THRESHOLD,
            run_id=run_id,
            symbol=features.symbol,
            event=event,
            shadow=shadow,
        )

    async with runtime.database.session() as session:
        stored = list(await session.scalars(select(Prediction)))
    assert [p.model_version for p in stored] == ["3", "3"]
