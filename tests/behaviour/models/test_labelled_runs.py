"""Labelled rows from stored runs: each row names the runs its features and label came from, and
only bars a finished run stored label a day (a run still going is not evidence yet)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, RawObject, Run
from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState
from marketsense.common.store import ObjectStore
from marketsense.models.labelled_runs import NoLabelledRows, labelled_rows, newest_finished_day
from tests.service_support import service_runtime

DAYS = [dt.date(2026, 3, 2) + dt.timedelta(days=i) for i in range(10)]
CLOSES = [10.0, 11.0, 10.5, 12.0, 11.0, 11.5, 13.0, 12.0, 12.5, 12.0]


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """A runtime on the test's database and store."""
    async with service_runtime(
        service="models", database_url=database_url, store=store, home=tmp_path
    ) as made:
        yield made


async def _run(
    runtime: Runtime, *, as_of: dt.date, state: RunState, features: bool, bars: bool
) -> str:
    """A run of symbol AAA that stored its day's features and/or bars up to its day; its id."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=as_of, state=state.value, symbols=1))
        await session.flush()
        if features:
            frame = pd.DataFrame([np.full(len(FEATURE_COLUMNS), DAYS.index(as_of), float)])
            frame.columns = pd.Index(FEATURE_COLUMNS)
            frame.insert(0, "date", [as_of])
            frame.insert(0, "symbol", "AAA")
            ref = await runtime.store.put(f"features/{run_id}/AAA", to_parquet_bytes(frame))
            stored = FeatureSet(
                run_id=run_id, symbol="AAA", as_of=as_of, feature_schema=FEATURE_SCHEMA
            )
            stored.point_at(ref)
            session.add(stored)
        if bars:
            upto = DAYS.index(as_of) + 1
            table = pd.DataFrame({"date": DAYS[:upto], "close": CLOSES[:upto]})
            ref = await runtime.store.put(f"bars/{run_id}/AAA", to_parquet_bytes(table))
            raw = RawObject(run_id=run_id, symbol="AAA", as_of=as_of, kind="bars", rows=upto)
            raw.point_at(ref)
            session.add(raw)
    return run_id


async def test_rows_name_their_runs_and_only_finished_runs_bars_label_a_day(
    runtime: Runtime,
) -> None:
    feature_runs = [
        await _run(runtime, as_of=day, state=RunState.SUCCESS, features=True, bars=False)
        for day in DAYS[1:4]
    ]
    labelling = await _run(
        runtime, as_of=DAYS[3], state=RunState.PARTIAL, features=False, bars=True
    )
    # Still running: its bars hold DAYS[4], but it is not evidence yet.
    await _run(runtime, as_of=DAYS[4], state=RunState.RUNNING, features=True, bars=True)

    rows = await labelled_rows(runtime, start=DAYS[0], end=DAYS[9])

    # DAYS[3]'s next session is stored only by the unfinished run: no label yet.
    assert list(rows.table["date"]) == DAYS[1:3]
    assert list(rows.table["label"]) == [int(CLOSES[i + 1] > CLOSES[i]) for i in (1, 2)]
    assert list(rows.table[FEATURE_COLUMNS[0]]) == [1.0, 2.0]
    assert rows.days == 2
    assert rows.run_ids == sorted([*feature_runs[:2], labelling])
    assert await newest_finished_day(runtime) == DAYS[3]


async def test_a_window_of_unlabelled_rows_says_the_next_run_labels_them(
    runtime: Runtime,
) -> None:
    await _run(runtime, as_of=DAYS[5], state=RunState.SUCCESS, features=True, bars=True)

    with pytest.raises(NoLabelledRows, match="next session's bars are stored by the next run"):
        await labelled_rows(runtime, start=DAYS[5], end=DAYS[9])
