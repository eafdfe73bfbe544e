"""After a promotion the prediction service re-scores the latest features with the new version,
so `GET latest` carries it within seconds; what the old version said stays stored. Re-scoring
writes only what is missing and skips what it cannot read."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select, update

from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, Prediction, Run
from marketsense.common.events import ObjectRef
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.common.store import ObjectStore
from marketsense.models.predictor import OnnxPredictor
from marketsense.prediction.rescoring import Rescorer, latest_sources, rescore_latest
from marketsense.prediction.store import PredictionRow, save_predictions
from tests import live_support
from tests.artifacts import small_predictor
from tests.conftest import INTEGRATION, TEST_AS_OF, eventually
from tests.model_registry_rows import new_api_key, processed_run, publish
from tests.service_support import service_runtime

AS_OF = TEST_AS_OF


@pytest.fixture(params=["embedded", pytest.param("real", marks=INTEGRATION)])
def backend(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> dict[str, object]:
    """Settings of the embedded default (SQLite, folder, in-process bus) or the real servers."""
    return live_support.live_backend(request, tmp_path, prefix)


@pytest.fixture
async def api() -> AsyncIterator[live_support.Clients]:
    """Clients for apps under test, closed afterwards."""
    async with live_support.app_clients() as clients:
        yield clients


async def test_promotion_swaps_the_predictor_within_seconds_and_latest_carries_the_new_version(
    backend: dict[str, object], tmp_path: Path, api: live_support.Clients
) -> None:
    name = live_support.unique("predictor")
    app = live_support.prediction_app(tmp_path, name, **backend)
    runtime: Runtime = app.state.runtime
    v1_dir = small_predictor(tmp_path / "v1", seed=1)
    v2_dir = small_predictor(tmp_path / "v2", seed=2, auc=0.6)
    symbols = live_support.symbols(3)
    await runtime.start_storage()
    await publish(runtime, name=name, folder=v1_dir)
    async with app.router.lifespan_context(app):
        client = api(app)
        key = await new_api_key(runtime.database)
        assert live_support.served("prediction", name, "1") == 1
        run_id, rows = await processed_run(runtime, symbols=symbols, as_of=AS_OF)
        # The pipeline's predict stage scores with the version served at the time.
        await eventually(live_support.all_at(client, symbols, key, "1"))
        swaps = live_support.swaps("prediction", name)

        await publish(runtime, name=name, folder=v2_dir)
        await eventually(live_support.all_at(client, symbols, key, "2"), timeout=10)

        for symbol in symbols:
            latest = (
                await client.get(f"/v1/predictions/{symbol}/latest", headers={"X-API-Key": key})
            ).json()
            assert latest["run_id"] == run_id
            assert latest["model_name"] == name
            assert latest["prob_up"] == pytest.approx(
                live_support.expected(v2_dir, rows, symbol), abs=1e-6
            )
        assert live_support.served("prediction", name, "1") is None
        assert live_support.served("prediction", name, "2") == 1
        assert live_support.swaps("prediction", name) == swaps + 1
        async with runtime.database.session() as session:
            stored = (
                await session.execute(
                    select(Prediction.symbol, Prediction.model_version, Prediction.prob_up).where(
                        Prediction.run_id == run_id
                    )
                )
            ).all()
    # What version 1 said stays next to what version 2 says: one row per version.
    assert sorted((s, v) for s, v, _ in stored) == sorted(
        (s, v) for s in symbols for v in ("1", "2")
    )
    for symbol, version, prob_up in stored:
        directory = v1_dir if version == "1" else v2_dir
        assert prob_up == pytest.approx(live_support.expected(directory, rows, symbol), abs=1e-6)


# --- re-scoring itself, on every database and object store ----------------------------------------


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """Prediction's runtime on an empty database and object store of each kind."""
    async with service_runtime(
        service="prediction", database_url=database_url, store=store, home=tmp_path / "home"
    ) as started:
        yield started


def predictor(tmp_path: Path, version: str, *, seed: int = 1) -> OnnxPredictor:
    """A small predictor `baseline` of the given version."""
    return OnnxPredictor(
        small_predictor(tmp_path / f"v{version}", seed=seed, name="baseline", version=version)
    )


async def scored_run(
    runtime: Runtime, tmp_path: Path, symbols: list[str], *, as_of: dt.date = AS_OF
) -> str:
    """A finished run whose symbols' features version 1 scored; its id."""
    run_id, _ = await processed_run(runtime, symbols=symbols, as_of=as_of, announce=False)
    first = predictor(tmp_path, "1").manifest
    rows = [
        PredictionRow.scored(
            first, run_id=run_id, symbol=symbol, as_of=as_of, prob_up=0.5, threshold=0.05
        )
        for symbol in symbols
    ]
    async with runtime.transaction() as session:
        await save_predictions(session, rows, replace=True)
        # One live run per day: this one is over, so another may start.
        await session.execute(update(Run).where(Run.id == run_id).values(state=RunState.SUCCESS))
    return run_id


async def by_version(runtime: Runtime) -> dict[str, list[tuple[str, str]]]:
    """(run, symbol) of the stored predictions, by model version."""
    found: dict[str, list[tuple[str, str]]] = {}
    async with runtime.database.session() as session:
        for p in await session.scalars(select(Prediction).order_by(Prediction.id)):
            found.setdefault(p.model_version, []).append((p.run_id, p.symbol))
    return found


async def test_the_source_of_each_latest_prediction_is_the_run_of_its_latest_day(
    runtime: Runtime, tmp_path: Path
) -> None:
    early = await scored_run(runtime, tmp_path, ["AAA", "BBB"], as_of=AS_OF - dt.timedelta(days=1))
    late = await scored_run(runtime, tmp_path, ["AAA"])
    again = await scored_run(runtime, tmp_path, ["AAA"])  # a second run of the same day

    async with runtime.database.session() as session:
        assert await latest_sources(session) == {"AAA": again, "BBB": early}
    assert late not in (early, again)


async def test_a_rescore_writes_only_the_missing_rows_and_keeps_the_rest(
    runtime: Runtime, tmp_path: Path
) -> None:
    run_id = await scored_run(runtime, tmp_path, ["AAA", "BBB", "CCC"])
    newer = predictor(tmp_path, "2", seed=2)
    async with runtime.transaction() as session:  # the pipeline scored BBB with it meanwhile
        bbb = PredictionRow.scored(
            newer.manifest, run_id=run_id, symbol="BBB", as_of=AS_OF, prob_up=0.99, threshold=0.05
        )
        await save_predictions(session, [bbb], replace=True)

    written = await rescore_latest(runtime=runtime, predictor=newer, threshold=0.05)
    again = await rescore_latest(runtime=runtime, predictor=newer, threshold=0.05)

    assert (written, again) == (2, 0)
    versions = await by_version(runtime)
    assert sorted(versions["1"]) == [(run_id, s) for s in ("AAA", "BBB", "CCC")]
    assert sorted(versions["2"]) == [(run_id, s) for s in ("AAA", "BBB", "CCC")]
    async with runtime.database.session() as session:
        kept = await session.scalar(
            select(Prediction.prob_up).where(
                Prediction.symbol == "BBB", Prediction.model_version == "2"
            )
        )
    assert kept == pytest.approx(0.99)


async def test_a_row_the_pipeline_wrote_meanwhile_is_kept(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await scored_run(runtime, tmp_path, ["AAA"])
    newer = predictor(tmp_path, "2", seed=2)
    read = runtime.store.get

    async def read_while_the_pipeline_scores(ref: ObjectRef) -> bytes:
        # Between re-scoring's look at what exists and its write, the pipeline scores AAA.
        async with runtime.transaction() as session:
            row = PredictionRow.scored(
                newer.manifest, run_id=run_id, symbol="AAA", as_of=AS_OF, prob_up=0.99, threshold=0
            )
            await save_predictions(session, [row], replace=True)
        return await read(ref)

    monkeypatch.setattr(runtime.store, "get", read_while_the_pipeline_scores)

    assert await rescore_latest(runtime=runtime, predictor=newer, threshold=0.05) == 0
    async with runtime.database.session() as session:
        kept = await session.scalar(
            select(Prediction.prob_up).where(Prediction.model_version == "2")
        )
    assert kept == pytest.approx(0.99)


async def test_nothing_scored_yet_means_nothing_to_rescore(
    runtime: Runtime, tmp_path: Path
) -> None:
    assert (
        await rescore_latest(runtime=runtime, predictor=predictor(tmp_path, "2"), threshold=0) == 0
    )


async def test_symbols_whose_feature_files_are_unusable_are_skipped(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = await scored_run(runtime, tmp_path, ["AAA", "BBB", "CCC"])
    async with runtime.database.session() as session:
        files = {f.symbol: f for f in await session.scalars(select(FeatureSet))}
    await runtime.store.delete(runtime.store.key_for(files["AAA"].uri))
    narrow = pd.DataFrame({"symbol": ["BBB"], "ret_1d": [0.1]})
    await runtime.store.put(runtime.store.key_for(files["BBB"].uri), to_parquet_bytes(narrow))

    written = await rescore_latest(runtime=runtime, predictor=predictor(tmp_path, "2"), threshold=0)

    assert written == 1
    assert (await by_version(runtime))["2"] == [(run_id, "CCC")]
    assert "cannot re-score AAA" in caplog.text
    assert "cannot re-score BBB" in caplog.text


async def test_a_newer_swap_replaces_the_older_job_and_on_done_follows_only_writes(
    runtime: Runtime, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marketsense.prediction.rescoring")
    await scored_run(runtime, tmp_path, ["AAA", "BBB"])
    done: list[str] = []
    rescorer = Rescorer(runtime, threshold=0.05, on_done=lambda: done.append("cleared"))
    try:
        rescorer.schedule(predictor(tmp_path, "2", seed=2))
        rescorer.schedule(predictor(tmp_path, "3", seed=3))  # before the first job could start
        await eventually(lambda: "with baseline version 3" in caplog.text, timeout=10)
        versions = await by_version(runtime)
        assert "2" not in versions
        assert len(versions["3"]) == 2
        assert done == ["cleared"]

        rescorer.schedule(predictor(tmp_path, "3", seed=3))  # nothing left to write
        await eventually(lambda: "re-scored 0 symbols" in caplog.text, timeout=10)
        assert done == ["cleared"]
    finally:
        await rescorer.stop()
