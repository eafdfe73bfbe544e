"""The gauges' reads: recent versions (with figures or only drift), the newest drift, and the
newest day a model predicted for."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from marketsense.common.db.engine import Database
from marketsense.common.db.models import Prediction, Run
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.gauge_reads import last_prediction_day, newest_drift, recent_versions
from tests.conftest import TEST_AS_OF
from tests.gauge_support import resolved_predictions, store_daily, store_drift

MODEL = "baseline-predictor"


async def store_run(database: Database, *, as_of: dt.date, model: str) -> str:
    """A finished run with one prediction of `model` for each symbol of a day; its id."""
    run_id = str(uuid.uuid4())
    async with database.session() as session:
        session.add(Run(id=run_id, as_of=as_of, state=RunState.SUCCESS, symbols=2))
        await session.flush()
        for symbol in ("G00", "G01"):
            session.add(
                Prediction(
                    run_id=run_id,
                    symbol=symbol,
                    as_of=as_of,
                    horizon_days=1,
                    prob_up=0.55,
                    signal="hold",
                    model_name=model,
                    model_version="3",
                )
            )
        await session.commit()
    return run_id


async def test_a_version_with_only_drift_is_recent_and_an_old_one_is_not(
    runtime: Runtime, database: Database
) -> None:
    resolved = resolved_predictions(end=TEST_AS_OF, days=30, score_noise=0.05)
    daily = daily_figures(resolved, quantile=0.2, cost_bps=5.0)
    await store_daily(database, model=MODEL, version="3", daily=daily)
    await store_daily(database, model=MODEL, version="1", daily=daily.iloc[:3])
    # Version 4 was just promoted: drift measured, no outcome yet.
    await store_drift(database, model=MODEL, version="4", as_of=TEST_AS_OF, statistics={"x": 0.1})

    assert await recent_versions(runtime, model=MODEL, days=10) == ["4", "3"]
    assert await recent_versions(runtime, model=MODEL, days=60) == ["4", "3", "1"]
    assert await recent_versions(runtime, model="other", days=60) == []


async def test_the_newest_drift_is_the_latest_days_run(
    runtime: Runtime, database: Database
) -> None:
    older = TEST_AS_OF - dt.timedelta(days=1)
    await store_drift(database, model=MODEL, version="3", as_of=older, statistics={"x": 0.9})
    await store_drift(
        database, model=MODEL, version="3", as_of=TEST_AS_OF, statistics={"x": 0.3, "y": 0.1}
    )

    drift = await newest_drift(runtime, model=MODEL, version="3")

    assert drift is not None
    assert drift.statistics == {"x": pytest.approx(0.3), "y": pytest.approx(0.1)}
    assert drift.drifted == 1
    assert await newest_drift(runtime, model=MODEL, version="9") is None


async def test_the_last_prediction_day_is_the_newest_run_that_predicted_with_the_model(
    runtime: Runtime, database: Database
) -> None:
    assert await last_prediction_day(runtime, model=MODEL) is None
    await store_run(database, as_of=TEST_AS_OF - dt.timedelta(days=3), model=MODEL)
    # A newer run whose predictions came from another model does not count.
    await store_run(database, as_of=TEST_AS_OF, model="other-predictor")

    assert await last_prediction_day(runtime, model=MODEL) == TEST_AS_OF - dt.timedelta(days=3)
    assert await last_prediction_day(runtime, model="other-predictor") == TEST_AS_OF
