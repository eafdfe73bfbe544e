"""A run's drift, measured against the feature reference stored with the version that predicted
in it, on every database and object store: stored once per run, or not at all without one."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import delete, select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import DriftMeasurement, FeatureSet, Prediction, Task
from marketsense.common.errors import ObjectIntegrityError
from marketsense.common.features import MIN_BARS, WARMUP_BARS
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from marketsense.common.store import ObjectStore
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit.baseline import training_table
from marketsense.models.feature_reference import write_feature_reference
from marketsense.models.files import FEATURE_REFERENCE_FILE
from marketsense.monitoring import drift_store
from marketsense.monitoring.config import MonitoringSettings
from marketsense.monitoring.drift_store import measure_run_drift
from marketsense.processing.service import feature_rows
from tests.artifacts import list_manifest_files, small_predictor
from tests.model_registry_rows import add_features, processed_run, register_version
from tests.service_support import service_runtime

AS_OF = dt.date(2026, 11, 20)
SYMBOLS = [f"S{i:02d}" for i in range(15)]
MODEL = "baseline-predictor"


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """Monitoring's runtime on an empty database and object store of each kind."""
    async with service_runtime(
        service="monitoring", database_url=database_url, store=store, home=tmp_path / "home"
    ) as started:
        yield started


def _training_rows() -> pd.DataFrame:
    """Training rows of the simulated market the run's features come from, before the run."""
    market = SimulatedMarket(seed=5)
    last = AS_OF - dt.timedelta(days=60)
    bars = {s: market.daily_bars(s, as_of=last, days=WARMUP_BARS + 200) for s in SYMBOLS}
    return training_table(bars)


async def _predicted_run(runtime: Runtime, tmp_path: Path, reference: pd.DataFrame | None) -> str:
    """A run whose features version 1 of the monitored model scored; version 1 carries
    `reference` (a sample of it) when given."""
    folder = small_predictor(tmp_path / "predictor", name=MODEL)
    if reference is not None:
        write_feature_reference(folder, reference)
        list_manifest_files(folder)
    version = await register_version(runtime, name=MODEL, kind="predictor", folder=folder)
    run_id, _ = await processed_run(runtime, symbols=SYMBOLS, as_of=AS_OF, announce=False)
    async with runtime.transaction() as session:
        session.add_all(
            Prediction(
                run_id=run_id,
                symbol=symbol,
                as_of=AS_OF,
                horizon_days=1,
                prob_up=0.5,
                signal="hold",
                model_name=MODEL,
                model_version=str(version),
            )
            for symbol in SYMBOLS
        )
    return run_id


async def _stored(runtime: Runtime) -> list[DriftMeasurement]:
    async with runtime.database.session() as session:
        return list(
            await session.scalars(select(DriftMeasurement).order_by(DriftMeasurement.feature))
        )


async def test_a_run_is_measured_against_its_versions_reference_and_stored_once(
    runtime: Runtime, tmp_path: Path
) -> None:
    reference = _training_rows()
    # Volatility three times what the model learned from: a market it never saw.
    reference["volatility_20d"] *= 3
    run_id = await _predicted_run(runtime, tmp_path, reference)
    settings = MonitoringSettings(drift_threshold=0.2, drift_p_value=0.01)

    figures = await measure_run_drift(runtime, settings, run_id=run_id)
    again = await measure_run_drift(runtime, settings, run_id=run_id)

    assert figures == again
    by_feature = {f.feature: f for f in figures}
    assert by_feature["volatility_20d"].drifted
    assert by_feature["volatility_20d"].rows == len(SYMBOLS)
    assert by_feature["volatility_20d"].reference_rows == min(len(reference), 5000)
    assert not by_feature["ret_1d"].drifted
    stored = await _stored(runtime)
    assert len(stored) == len(figures)  # measured twice, stored once
    assert {(r.run_id, r.as_of, r.model_name, r.model_version) for r in stored} == {
        (run_id, AS_OF, MODEL, "1")
    }
    assert {r.feature: (r.statistic, r.p_value, r.drifted) for r in stored} == {
        f.feature: (f.statistic, f.p_value, f.drifted) for f in figures
    }


async def test_a_backfill_is_measured_on_every_day_it_stored_up_to_the_row_limit(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await _predicted_run(runtime, tmp_path, _training_rows())
    market = SimulatedMarket(seed=5)
    start = AS_OF - dt.timedelta(days=6)  # five sessions, as a backfill's files hold them
    backfill = {
        s: feature_rows(
            market.daily_bars(s, as_of=AS_OF, days=MIN_BARS + 5), start=start, as_of=AS_OF, symbol=s
        )
        for s in SYMBOLS
    }
    # The run's files replaced by a backfill's (add_features records them and their tasks anew).
    async with runtime.transaction() as session:
        await session.execute(delete(FeatureSet).where(FeatureSet.run_id == run_id))
        await session.execute(
            delete(Task).where(Task.run_id == run_id, Task.stage == Stage.PROCESS)
        )
        await add_features(session, runtime.store, run_id=run_id, as_of=AS_OF, rows=backfill)
    settings = MonitoringSettings()

    every_day = await measure_run_drift(runtime, settings, run_id=run_id)
    monkeypatch.setattr(drift_store, "MAX_RUN_ROWS", 2 * len(SYMBOLS))
    latest = await measure_run_drift(runtime, settings, run_id=run_id)

    assert {len(rows) for rows in backfill.values()} == {5}
    assert {f.rows for f in every_day if f.feature == "ret_1d"} == {5 * len(SYMBOLS)}
    assert {f.rows for f in latest if f.feature == "ret_1d"} == {2 * len(SYMBOLS)}
    assert [(r.feature, r.rows) for r in await _stored(runtime) if r.feature == "ret_1d"] == [
        ("ret_1d", 2 * len(SYMBOLS))
    ]


async def test_a_version_without_a_reference_measures_nothing(
    runtime: Runtime, tmp_path: Path
) -> None:
    run_id = await _predicted_run(runtime, tmp_path, None)

    assert await measure_run_drift(runtime, MonitoringSettings(), run_id=run_id) == []
    assert await _stored(runtime) == []


async def test_a_reference_changed_in_the_store_is_not_trusted(
    runtime: Runtime, tmp_path: Path
) -> None:
    run_id = await _predicted_run(runtime, tmp_path, _training_rows())
    key = f"models/{MODEL}/1/{FEATURE_REFERENCE_FILE}"
    await runtime.store.put(
        key, (tmp_path / "predictor" / FEATURE_REFERENCE_FILE).read_bytes()[:-8]
    )

    with pytest.raises(ObjectIntegrityError, match="checksum mismatch"):
        await measure_run_drift(runtime, MonitoringSettings(), run_id=run_id)
    assert await _stored(runtime) == []
