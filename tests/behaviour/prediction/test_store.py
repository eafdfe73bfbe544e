"""Prediction rows, written one way for the pipeline (replace) and for re-scoring (keep), on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import Prediction, Run
from marketsense.common.features import FEATURE_SCHEMA
from marketsense.common.states import RunState
from marketsense.models.predictor import PredictorManifest
from marketsense.prediction.store import PredictionRow, save_predictions

DAY = dt.date(2026, 11, 20)


def manifest(version: str = "1") -> PredictorManifest:
    """A predictor's manifest, two days ahead."""
    return PredictorManifest(
        name="baseline",
        version=version,
        feature_schema=FEATURE_SCHEMA,
        features=["ret_1d"],
        input_name="X",
        probability_output="probabilities",
        horizon_days=2,
    )


def scored(run_id: str, symbol: str, prob_up: float, *, version: str = "1") -> PredictionRow:
    """What a version said about a symbol of a run."""
    return PredictionRow.scored(
        manifest(version), run_id=run_id, symbol=symbol, as_of=DAY, prob_up=prob_up, threshold=0.05
    )


async def new_run(database: Database) -> str:
    """A run to hang predictions on; its id."""
    run_id = str(uuid.uuid4())
    async with database.session() as session:
        session.add(Run(id=run_id, as_of=DAY, state=RunState.RUNNING, symbols=3))
        await session.commit()
    return run_id


async def save(database: Database, rows: list[PredictionRow], *, replace: bool) -> list[int]:
    """Save rows in a transaction of their own; the ids written."""
    async with database.session() as session:
        ids = await save_predictions(session, rows, replace=replace)
        await session.commit()
    return ids


async def stored(database: Database) -> list[tuple[str, str, float, str]]:
    """(symbol, version, prob_up to 6 places, signal) of every stored prediction, in id order."""
    async with database.session() as session:
        rows = await session.scalars(select(Prediction).order_by(Prediction.id))
        return [(p.symbol, p.model_version, round(p.prob_up, 6), p.signal) for p in rows]


def test_a_scored_row_carries_its_signal_and_the_models_name_version_and_horizon() -> None:
    row = scored("r1", "AAA", 0.58)

    assert (row.signal, row.horizon_days) == ("up", 2)
    assert (row.model_name, row.model_version) == ("baseline", "1")
    assert scored("r1", "AAA", 0.52).signal == "flat"


async def test_rows_are_written_and_their_ids_returned(database: Database) -> None:
    run_id = await new_run(database)

    ids = await save(
        database, [scored(run_id, s, 0.6) for s in ("AAA", "BBB", "CCC")], replace=True
    )

    assert len(set(ids)) == 3
    assert [symbol for symbol, *_ in await stored(database)] == ["AAA", "BBB", "CCC"]
    async with database.session() as session:
        by_id = {p.id: p.symbol for p in await session.scalars(select(Prediction))}
    assert [by_id[i] for i in ids] == ["AAA", "BBB", "CCC"]


async def test_no_rows_write_nothing(database: Database) -> None:
    assert await save(database, [], replace=True) == []
    assert await save(database, [], replace=False) == []
    assert await stored(database) == []


async def test_the_same_version_scoring_a_run_again_replaces_its_row(database: Database) -> None:
    run_id = await new_run(database)
    [first] = await save(database, [scored(run_id, "AAA", 0.6)], replace=True)

    [again] = await save(database, [scored(run_id, "AAA", 0.3)], replace=True)

    assert again == first
    assert await stored(database) == [("AAA", "1", 0.3, "down")]


async def test_a_rescore_keeps_rows_already_there_and_fills_the_gaps(database: Database) -> None:
    run_id = await new_run(database)
    await save(database, [scored(run_id, "AAA", 0.6)], replace=True)

    written = await save(
        database, [scored(run_id, "AAA", 0.1), scored(run_id, "BBB", 0.1)], replace=False
    )

    assert len(written) == 1  # only BBB's row was written
    assert await stored(database) == [
        ("AAA", "1", 0.6, "up"),
        ("BBB", "1", 0.1, "down"),
    ]


async def test_another_version_adds_its_own_row_beside_the_first(database: Database) -> None:
    run_id = await new_run(database)
    await save(database, [scored(run_id, "AAA", 0.6)], replace=True)

    await save(database, [scored(run_id, "AAA", 0.4, version="2")], replace=True)

    assert [(s, v) for s, v, *_ in await stored(database)] == [("AAA", "1"), ("AAA", "2")]


async def test_an_unwritten_batch_leaves_nothing_behind(database: Database) -> None:
    run_id = await new_run(database)

    async with database.session() as session:
        await save_predictions(session, [scored(run_id, "AAA", 0.6)], replace=True)
        await session.rollback()  # the caller's transaction failed after the insert

    assert await stored(database) == []
