"""A backfill through ingestion, processing and prediction on every database and object store:
one feature row and one prediction per (symbol, session), each equal to what a daily run of that
day computes, and nothing written twice however often the events arrive."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select, update

from marketsense.common.calendar import exchange_calendar
from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet, OutboxMessage, Prediction, Run, Task
from marketsense.common.events import FeaturesReady, Payload, PredictionsReady, RawDataReady
from marketsense.common.features import FEATURE_COLUMNS, MIN_BARS
from marketsense.common.parquet import from_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import RunState, Stage, TaskState
from marketsense.common.store import ObjectStore
from marketsense.ingestion.service import ingest_symbol
from marketsense.ingestion.sources.base import SymbolData
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.predictor import OnnxPredictor
from marketsense.models.sentiment import SentimentModel
from marketsense.prediction.rescoring import rescore_latest
from marketsense.prediction.service import PredictorHolder, list_predictions, predict_symbol
from marketsense.processing.service import SentimentSlot, process_symbol
from tests.artifacts import small_predictor
from tests.service_support import queued_events, service_runtime, task_of

START, END = dt.date(2026, 9, 8), dt.date(2026, 10, 19)
"""Thirty XNYS sessions."""
SESSIONS = exchange_calendar().sessions(START, END)
SYMBOLS = ["ACME", "BOLT", "CRUX"]
LOOKBACK = MIN_BARS
"""Bars before the first day: the features' warm-up, after which the exponential averages' seed
no longer matters, so a daily run and a backfill may be compared."""
MARKET = SimulatedMarket(seed=7)


@dataclass
class Stages:
    """The three data services of a run on one database and object store."""

    ingestion: Runtime
    processing: Runtime
    prediction: Runtime
    sentiment: SentimentSlot
    predictor: PredictorHolder


@pytest.fixture(scope="module")
def model(sentiment_model_dir: Path) -> SentimentModel:
    """The default sentiment model, int8 as processing serves it."""
    return SentimentModel(sentiment_model_dir, quantized=True)


@pytest.fixture
async def stages(
    database: Database,
    database_url: str,
    store: ObjectStore,
    tmp_path: Path,
    model: SentimentModel,
) -> AsyncIterator[Stages]:
    """Ingestion, processing and prediction on an empty database and object store of each kind."""
    sentiment = SentimentSlot()
    sentiment.current = model
    predictor = PredictorHolder()
    predictor.current = OnnxPredictor(small_predictor(tmp_path / "predictor"))
    kinds = ("ingestion", "processing", "prediction")
    runtimes = [
        service_runtime(service=kind, database_url=database_url, store=store, home=tmp_path / kind)
        for kind in kinds
    ]
    async with runtimes[0] as ingestion, runtimes[1] as processing, runtimes[2] as prediction:
        yield Stages(ingestion, processing, prediction, sentiment, predictor)


async def new_run(runtime: Runtime, *, as_of: dt.date, symbols: list[str]) -> str:
    """A running run with a pending task of every stage for each symbol; its id."""
    run_id = str(uuid.uuid4())
    async with runtime.transaction() as session:
        session.add(Run(id=run_id, as_of=as_of, state=RunState.RUNNING, symbols=len(symbols)))
        await session.flush()
        for symbol in symbols:
            for stage in (Stage.INGEST, Stage.PROCESS, Stage.PREDICT):
                session.add(
                    Task(run_id=run_id, symbol=symbol, stage=stage, state=TaskState.PENDING)
                )
    return run_id


async def finish_run(runtime: Runtime, run_id: str) -> None:
    """Mark a run done, as the orchestrator would, so another run may be for the same day."""
    async with runtime.transaction() as session:
        await session.execute(update(Run).where(Run.id == run_id).values(state=RunState.SUCCESS))


P = TypeVar("P", bound=Payload)


async def events_of(runtime: Runtime, run_id: str, kind: type[P]) -> list[tuple[str, P]]:
    """The (symbol, event) pairs of one kind a run queued, oldest first."""
    return [
        (envelope.symbol or "", event)
        for envelope, event in await queued_events(runtime)
        if envelope.run_id == run_id and isinstance(event, kind)
    ]


async def ingest(
    stages: Stages, run_id: str, *, as_of: dt.date, start: dt.date | None, source: object = MARKET
) -> None:
    """Deliver `ingest.requested` for each symbol of the run."""
    async with stages.ingestion.database.session() as session:
        symbols = await session.scalars(
            select(Task.symbol).where(Task.run_id == run_id, Task.stage == Stage.INGEST)
        )
        wanted = sorted(symbols)
    for symbol in wanted:
        await ingest_symbol(
            runtime=stages.ingestion,
            source=source,  # type: ignore[arg-type]
            run_id=run_id,
            symbol=symbol,
            as_of=as_of,
            lookback_days=LOOKBACK,
            start=start,
        )


async def process(stages: Stages, run_id: str) -> None:
    """Deliver every `raw.ready` of the run to processing."""
    for symbol, event in await events_of(stages.processing, run_id, RawDataReady):
        await process_symbol(
            runtime=stages.processing,
            sentiment=stages.sentiment,
            batch_size=32,
            run_id=run_id,
            symbol=symbol,
            event=event,
        )


async def predict(stages: Stages, run_id: str) -> None:
    """Deliver every `features.ready` of the run to prediction."""
    for symbol, event in await events_of(stages.prediction, run_id, FeaturesReady):
        await predict_symbol(
            runtime=stages.prediction,
            holder=stages.predictor,
            threshold=0.05,
            run_id=run_id,
            symbol=symbol,
            event=event,
        )


async def run_through(
    stages: Stages, *, as_of: dt.date, start: dt.date | None, symbols: list[str]
) -> str:
    """A run of the symbols through the three stages, then marked done; its id."""
    run_id = await new_run(stages.ingestion, as_of=as_of, symbols=symbols)
    await ingest(stages, run_id, as_of=as_of, start=start)
    await process(stages, run_id)
    await predict(stages, run_id)
    await finish_run(stages.ingestion, run_id)
    return run_id


async def feature_file(runtime: Runtime, run_id: str, symbol: str) -> pd.DataFrame:
    """The feature rows processing stored for a symbol of a run."""
    async with runtime.database.session() as session:
        stored = await session.scalar(
            select(FeatureSet).where(FeatureSet.run_id == run_id, FeatureSet.symbol == symbol)
        )
    assert stored is not None
    return from_parquet_bytes(await runtime.store.get(stored.ref()))


async def predictions_of(runtime: Runtime, run_id: str) -> dict[tuple[str, dt.date], Prediction]:
    """A run's predictions by (symbol, day)."""
    async with runtime.database.session() as session:
        rows = await session.scalars(select(Prediction).where(Prediction.run_id == run_id))
        return {(row.symbol, row.as_of): row for row in rows}


async def written(runtime: Runtime) -> tuple[int, int, int]:
    """How many feature sets, predictions and events are stored."""
    async with runtime.database.session() as session:
        return (
            await session.scalar(select(func.count()).select_from(FeatureSet)) or 0,
            await session.scalar(select(func.count()).select_from(Prediction)) or 0,
            await session.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
        )


async def test_a_backfill_stores_one_feature_row_and_one_prediction_per_symbol_and_session(
    stages: Stages,
) -> None:
    run_id = await run_through(stages, as_of=END, start=START, symbols=SYMBOLS)

    for symbol, raw in await events_of(stages.ingestion, run_id, RawDataReady):
        assert (raw.start, raw.as_of, raw.rows) == (START, END, LOOKBACK + len(SESSIONS))
        texts = from_parquet_bytes(await stages.ingestion.store.get(raw.texts))  # type: ignore[arg-type]
        assert set(texts["date"]) <= set(SESSIONS), f"{symbol}: texts of the lookback stored"
    for symbol in SYMBOLS:
        rows = await feature_file(stages.processing, run_id, symbol)
        assert rows["date"].tolist() == SESSIONS
        assert (rows["symbol"] == symbol).all()
        task = await task_of(stages.processing, run_id=run_id, symbol=symbol, stage=Stage.PROCESS)
        assert (task.state, task.notes) == (TaskState.SUCCESS, None)
    features = await events_of(stages.processing, run_id, FeaturesReady)
    assert sorted(s for s, _ in features) == SYMBOLS
    assert {(e.start, e.as_of, e.rows) for _, e in features} == {(START, END, len(SESSIONS))}
    predictions = await predictions_of(stages.prediction, run_id)
    assert sorted(predictions) == sorted((s, day) for s in SYMBOLS for day in SESSIONS)
    announced = await events_of(stages.prediction, run_id, PredictionsReady)
    assert len(announced) == len(SYMBOLS)  # one per symbol: the orchestrator settles on it
    for symbol, event in announced:
        assert (event.start, event.as_of, event.rows) == (START, END, len(SESSIONS))
        assert event.prediction_id == predictions[(symbol, END)].id


@pytest.fixture(scope="module")
def float_model(sentiment_model_dir: Path) -> SentimentModel:
    """The default sentiment model in float32: int8 weights are quantized against each batch's
    activations, so its scores move in the fourth decimal with the texts scored alongside."""
    return SentimentModel(sentiment_model_dir, quantized=False)


async def test_each_backfilled_day_equals_what_a_daily_run_of_that_day_computes(
    stages: Stages, float_model: SentimentModel
) -> None:
    stages.sentiment.current = float_model
    backfill = await run_through(stages, as_of=END, start=START, symbols=SYMBOLS)
    backfilled = await predictions_of(stages.prediction, backfill)

    for day in (START, SESSIONS[13], END):
        daily = await run_through(stages, as_of=day, start=None, symbols=SYMBOLS)
        [(_, event)] = (await events_of(stages.processing, daily, FeaturesReady))[:1]
        assert (event.start, event.rows) == (None, 1)
        for symbol in SYMBOLS:
            wide = await feature_file(stages.processing, backfill, symbol)
            one = await feature_file(stages.processing, daily, symbol)
            expected = one[list(FEATURE_COLUMNS)].to_numpy(np.float32)[0]
            got = wide.loc[wide["date"] == day, list(FEATURE_COLUMNS)].to_numpy(np.float32)[0]
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=f"{symbol} {day}")
            prediction = (await predictions_of(stages.prediction, daily))[(symbol, day)]
            assert backfilled[(symbol, day)].prob_up == pytest.approx(prediction.prob_up, abs=1e-6)
            assert backfilled[(symbol, day)].signal == prediction.signal


async def test_every_event_of_a_backfill_delivered_again_writes_nothing_twice(
    stages: Stages,
) -> None:
    run_id = await run_through(stages, as_of=END, start=START, symbols=SYMBOLS)
    before = await written(stages.prediction)
    ids = {key: row.id for key, row in (await predictions_of(stages.prediction, run_id)).items()}

    await ingest(stages, run_id, as_of=END, start=START)
    await process(stages, run_id)
    await predict(stages, run_id)
    assert await written(stages.prediction) == before
    # A task run again (a retry after its result was stored) replaces its rows in place.
    async with stages.prediction.transaction() as session:
        await session.execute(
            update(Task)
            .where(Task.run_id == run_id, Task.stage == Stage.PREDICT, Task.symbol == "ACME")
            .values(state=TaskState.PENDING)
        )
    await predict(stages, run_id)

    features, predictions, events = await written(stages.prediction)
    assert (features, predictions, events) == (before[0], before[1], before[2] + 1)
    again = await predictions_of(stages.prediction, run_id)
    assert {key: row.id for key, row in again.items()} == ids


class Gappy:
    """The simulated market without the bars of some days (a feed that missed them)."""

    name = "gappy"

    def __init__(self, missing: set[dt.date]):
        self.missing = missing

    async def fetch(self, symbol: str, *, as_of: dt.date, days: int) -> SymbolData:
        """The market's data less the missing days' bars."""
        data = await MARKET.fetch(symbol, as_of=as_of, days=days)
        bars = data.bars[~data.bars["date"].isin(self.missing)].reset_index(drop=True)
        return SymbolData(bars=bars, texts=data.texts, issues=data.issues)


async def test_backfilled_days_without_a_bar_are_left_out_and_named_on_the_task(
    stages: Stages,
) -> None:
    gaps = {SESSIONS[4], SESSIONS[20]}
    run_id = await new_run(stages.ingestion, as_of=END, symbols=["ACME"])

    await ingest(stages, run_id, as_of=END, start=START, source=Gappy(gaps))
    await process(stages, run_id)
    await predict(stages, run_id)

    rows = await feature_file(stages.processing, run_id, "ACME")
    assert rows["date"].tolist() == [day for day in SESSIONS if day not in gaps]
    task = await task_of(stages.processing, run_id=run_id, symbol="ACME", stage=Stage.PROCESS)
    assert task.notes == (
        f"no features for 2 of {len(SESSIONS)} sessions (no bar, or too little history): "
        f"{SESSIONS[4].isoformat()}, {SESSIONS[20].isoformat()}"
    )
    assert len(await predictions_of(stages.prediction, run_id)) == len(SESSIONS) - 2


async def test_a_backfill_reads_back_in_pages_and_is_rescored_on_its_last_day(
    stages: Stages, tmp_path: Path
) -> None:
    run_id = await run_through(stages, as_of=END, start=START, symbols=SYMBOLS)

    seen: list[int] = []
    after: int | None = None
    async with stages.prediction.database.session() as session:
        while page := await list_predictions(
            session=session, as_of=None, symbols=None, after_id=after, limit=7
        ):
            seen += [row.id for row in page]
            after = page[-1].id
        [last_day] = await list_predictions(
            session=session, as_of=END, symbols=["BOLT"], after_id=None, limit=10
        )
    assert len(seen) == len(set(seen)) == len(SYMBOLS) * len(SESSIONS)
    assert (last_day.run_id, last_day.as_of) == (run_id, END)

    newer = OnnxPredictor(small_predictor(tmp_path / "newer", seed=12, version="2"))
    assert await rescore_latest(runtime=stages.prediction, predictor=newer, threshold=0.05) == 3
    async with stages.prediction.database.session() as session:
        rescored = {
            row.symbol: row
            for row in await session.scalars(
                select(Prediction).where(Prediction.model_version == "2")
            )
        }
    for symbol in SYMBOLS:
        rows = await feature_file(stages.processing, run_id, symbol)
        last = rows.loc[rows["date"] == END, newer.manifest.features].to_numpy(np.float32)
        assert rescored[symbol].as_of == END
        assert rescored[symbol].prob_up == pytest.approx(float(newer.predict_up(last)[0]), abs=1e-6)
