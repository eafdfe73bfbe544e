"""A predictor set from stored runs: the features finished runs stored for the window, labelled
with whether the next stored session closed higher; a window without them says why."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pandas as pd
import pytest

from marketsense.common.db.models import FeatureSet, RawObject, Run
from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.models.evaluation import InvalidEvaluationSet, read_predictor_set
from marketsense.registry.predictor_sets import MAX_WINDOW_DAYS, predictor_set_from_runs
from tests.registry_support import Registry

FIRST = dt.date(2026, 3, 2)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(30)]
CLOSES = [10.0 + (i * 7 % 5) for i in range(len(DAYS))]
"""Closes that go up and down; day i's outcome is whether day i+1 closed higher."""


def _features(symbol: str, days: list[dt.date], marker: float) -> pd.DataFrame:
    """Feature rows whose first column carries `marker` plus the day's index, to trace them."""
    values = np.zeros((len(days), len(FEATURE_COLUMNS)))
    values[:, 0] = [marker + DAYS.index(day) for day in days]
    frame = pd.DataFrame(values, columns=FEATURE_COLUMNS)
    frame.insert(0, "date", days)
    frame.insert(0, "symbol", symbol)
    return frame


async def _run(
    runtime: Runtime,
    *,
    as_of: dt.date,
    features: pd.DataFrame | None,
    bars_until: dt.date | None = None,
    bars_from: dt.date = FIRST,
    state: RunState = RunState.SUCCESS,
    start: dt.date | None = None,
    symbol: str = "AAA",
) -> None:
    """A run of one symbol that stored `features` and, if given, bars up to `bars_until`."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=as_of, state=state.value, symbols=1, start=start))
        await session.flush()
        if features is not None:
            ref = await runtime.store.put(f"features/{run_id}/{symbol}", to_parquet_bytes(features))
            stored = FeatureSet(
                run_id=run_id, symbol=symbol, as_of=as_of, feature_schema=FEATURE_SCHEMA
            )
            stored.point_at(ref)
            session.add(stored)
        if bars_until is not None:
            span = slice(DAYS.index(bars_from), DAYS.index(bars_until) + 1)
            bars = pd.DataFrame({"date": DAYS[span], "close": CLOSES[span]})
            count = len(bars)
            ref = await runtime.store.put(f"bars/{run_id}/{symbol}", to_parquet_bytes(bars))
            raw = RawObject(run_id=run_id, symbol=symbol, as_of=as_of, kind="bars", rows=count)
            raw.point_at(ref)
            session.add(raw)


def _expected_label(day: dt.date) -> int:
    index = DAYS.index(day)
    return int(CLOSES[index + 1] > CLOSES[index])


async def test_rows_of_finished_runs_in_the_window_get_the_next_sessions_outcome(
    registry: Registry,
) -> None:
    runtime = registry.runtime
    for day in DAYS[3:7]:
        await _run(runtime, as_of=day, features=_features("AAA", [day], 0.0))
    await _run(runtime, as_of=DAYS[7], features=None, bars_until=DAYS[6])
    # A failed run's features are not evidence, whatever they hold.
    await _run(
        runtime, as_of=DAYS[5], features=_features("AAA", [DAYS[5]], 1000.0), state=RunState.FAILED
    )

    frame = from_parquet_bytes(await predictor_set_from_runs(runtime, start=DAYS[3], end=DAYS[6]))

    # DAYS[6] has no stored next session yet, so it has no outcome and no row.
    assert list(frame["date"]) == DAYS[3:6]
    assert list(frame["label"]) == [_expected_label(day) for day in DAYS[3:6]]
    assert list(frame[FEATURE_COLUMNS[0]]) == [3.0, 4.0, 5.0]
    assert list(frame["symbol"]) == ["AAA"] * 3


async def test_outcomes_come_from_the_first_run_after_the_window_not_a_later_one(
    registry: Registry,
) -> None:
    runtime = registry.runtime
    for day in DAYS[3:6]:
        await _run(runtime, as_of=day, features=_features("AAA", [day], 0.0))
    await _run(runtime, as_of=DAYS[6], features=None, bars_until=DAYS[6])
    # A much later run's bars no longer reach back to the window.
    await _run(runtime, as_of=DAYS[29], features=None, bars_from=DAYS[20], bars_until=DAYS[29])

    frame = from_parquet_bytes(await predictor_set_from_runs(runtime, start=DAYS[3], end=DAYS[5]))

    assert list(frame["date"]) == DAYS[3:6]
    assert list(frame["label"]) == [_expected_label(day) for day in DAYS[3:6]]


async def test_a_backfill_contributes_the_days_of_its_range_inside_the_window(
    registry: Registry,
) -> None:
    runtime = registry.runtime
    await _run(
        runtime,
        as_of=DAYS[4],
        start=DAYS[0],
        features=_features("AAA", DAYS[0:5], 0.0),
        bars_until=DAYS[5],
    )
    # The same day from a later run replaces the backfill's row.
    await _run(runtime, as_of=DAYS[2], features=_features("AAA", [DAYS[2]], 500.0))

    frame = from_parquet_bytes(await predictor_set_from_runs(runtime, start=DAYS[1], end=DAYS[2]))

    assert list(frame["date"]) == [DAYS[1], DAYS[2]]
    assert list(frame[FEATURE_COLUMNS[0]]) == [1.0, 502.0]


async def test_a_window_without_stored_features_says_to_run_the_pipeline(
    registry: Registry,
) -> None:
    await _run(registry.runtime, as_of=DAYS[9], features=_features("AAA", [DAYS[9]], 0.0))

    with pytest.raises(InvalidEvaluationSet, match="no finished run stored features"):
        await predictor_set_from_runs(registry.runtime, start=DAYS[0], end=DAYS[5])


async def test_features_whose_next_session_is_not_stored_yet_give_no_set(
    registry: Registry,
) -> None:
    await _run(
        registry.runtime,
        as_of=DAYS[9],
        features=_features("AAA", [DAYS[9]], 0.0),
        bars_until=DAYS[9],
    )

    with pytest.raises(InvalidEvaluationSet, match=r"no stored feature row .* realised outcome"):
        await predictor_set_from_runs(registry.runtime, start=DAYS[9], end=DAYS[9])


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (DAYS[5], DAYS[4], "must be on or before end"),
        (DAYS[0], DAYS[0] + dt.timedelta(days=MAX_WINDOW_DAYS + 1), "narrow start and end"),
    ],
)
async def test_a_reversed_or_overlong_window_is_refused(
    registry: Registry, start: dt.date, end: dt.date, message: str
) -> None:
    with pytest.raises(InvalidEvaluationSet, match=message):
        await predictor_set_from_runs(registry.runtime, start=start, end=end)


async def test_the_route_adds_the_built_set_once_and_explains_an_empty_window(
    registry: Registry,
) -> None:
    runtime = registry.runtime
    await _run(runtime, as_of=DAYS[25], start=DAYS[0], features=_features("AAA", DAYS[:26], 0.0))
    await _run(runtime, as_of=DAYS[29], features=None, bars_until=DAYS[29])
    body = {"start": str(DAYS[0]), "end": str(DAYS[25])}
    approver = registry.key("approver")

    added = await registry.api.post(
        "/v1/evaluation-sets/predictor/from-runs", json=body, headers=approver
    )
    again = await registry.api.post(
        "/v1/evaluation-sets/predictor/from-runs", json=body, headers=approver
    )
    empty = await registry.api.post(
        "/v1/evaluation-sets/predictor/from-runs",
        json={"start": "2020-01-01", "end": "2020-02-01"},
        headers=approver,
    )
    publisher = await registry.api.post(
        "/v1/evaluation-sets/predictor/from-runs", json=body, headers=registry.key("publisher")
    )
    data = await registry.api.get(
        f"/v1/evaluation-sets/{added.json()['id']}/data", headers=approver
    )

    assert added.status_code == 201
    assert added.json()["rows"] == 26
    assert added.json()["name"] == f"runs-{DAYS[0]}-{DAYS[25]}"
    assert added.json()["active"] is True
    assert again.status_code == 200
    assert again.json()["id"] == added.json()["id"]
    assert empty.status_code == 422
    assert "start, end: no finished run stored features" in empty.json()["detail"]
    assert publisher.status_code == 403
    assert len(read_predictor_set(data.content).frame) == 26
