"""Processing one symbol for a run: the day's texts scored with the served sentiment model, its
feature row stored, recorded and announced together, once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import FeatureSet
from marketsense.common.errors import RetryableError
from marketsense.common.events import FeaturesReady, RawDataReady
from marketsense.common.features import FEATURE_SCHEMA, MIN_BARS
from marketsense.common.parquet import from_parquet_bytes, to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState
from marketsense.common.store import ObjectStore
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.models.sentiment import SentimentModel
from marketsense.processing.service import (
    SentimentSlot,
    features_key,
    process_symbol,
    score_day,
)
from tests.service_support import add_run, queued_events, service_runtime, task_of
from tests.text_samples import FRENCH, RUSSIAN

AS_OF = dt.date(2026, 11, 20)
MARKET = SimulatedMarket(seed=7)
SYMBOL = "ACME"
"""A symbol with texts on the run day and on the days before."""


@pytest.fixture(scope="module")
def model(sentiment_model_dir: Path) -> SentimentModel:
    """The default sentiment model, int8 as processing serves it."""
    return SentimentModel(sentiment_model_dir, quantized=True)


@pytest.fixture
def slot(model: SentimentModel) -> SentimentSlot:
    """A sentiment slot serving the default model."""
    served = SentimentSlot()
    served.current = model
    return served


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """Processing's runtime on an empty database and object store of each kind."""
    async with service_runtime(
        service="processing", database_url=database_url, store=store, home=tmp_path / "home"
    ) as started:
        yield started


async def raw_data(runtime: Runtime, symbol: str, *, texts: bool = True) -> RawDataReady:
    """Sixty days of a symbol's simulated bars (and texts) stored as ingestion stores them."""
    bars = MARKET.daily_bars(symbol, as_of=AS_OF, days=MIN_BARS)
    bars_ref = await runtime.store.put(f"raw/{symbol}/bars.parquet", to_parquet_bytes(bars))
    texts_ref = None
    if texts:
        frame = MARKET.texts(symbol, as_of=AS_OF, days=MIN_BARS)
        texts_ref = await runtime.store.put(f"raw/{symbol}/texts.parquet", to_parquet_bytes(frame))
    return RawDataReady(as_of=AS_OF, bars=bars_ref, rows=len(bars), texts=texts_ref)


async def process(runtime: Runtime, slot: SentimentSlot, run_id: str, event: RawDataReady) -> None:
    """Process the symbol of a run."""
    await process_symbol(
        runtime=runtime, sentiment=slot, batch_size=8, run_id=run_id, symbol=SYMBOL, event=event
    )


async def test_only_the_texts_of_the_day_are_scored(model: SentimentModel) -> None:
    texts = MARKET.texts(SYMBOL, as_of=AS_OF, days=5)
    of_the_day = texts[texts["date"] == AS_OF]
    assert 0 < len(of_the_day) < len(texts)

    scored = await score_day(model, texts, as_of=AS_OF, batch_size=2)

    assert scored["date"].tolist() == [AS_OF] * len(of_the_day)
    # Batched alike: the quantised model's activation scales depend on each batch's padding.
    np.testing.assert_allclose(
        scored["score"], model.scores(of_the_day["text"].tolist(), batch_size=2), atol=1e-6
    )


@pytest.mark.parametrize("days", [0, 1])
async def test_a_day_without_texts_scores_none(model: SentimentModel, days: int) -> None:
    texts = MARKET.texts(SYMBOL, as_of=AS_OF - dt.timedelta(days=1), days=days)

    scored = await score_day(model, texts, as_of=AS_OF, batch_size=8)

    assert scored.empty
    assert list(scored.columns) == ["date", "score"]


async def test_nothing_is_processed_until_a_sentiment_model_is_loaded(runtime: Runtime) -> None:
    run_id = await add_run(runtime, as_of=AS_OF, symbols=[SYMBOL], stage=Stage.PROCESS)

    with pytest.raises(RetryableError, match="no sentiment model is loaded yet"):
        await process(runtime, SentimentSlot(), run_id, await raw_data(runtime, SYMBOL))
    task = await task_of(runtime, run_id=run_id, symbol=SYMBOL, stage=Stage.PROCESS)
    assert task.state == TaskState.PENDING  # not even claimed


async def test_a_symbols_feature_row_is_stored_recorded_and_announced_once(
    runtime: Runtime, slot: SentimentSlot
) -> None:
    run_id = await add_run(runtime, as_of=AS_OF, symbols=[SYMBOL], stage=Stage.PROCESS)
    event = await raw_data(runtime, SYMBOL)
    texts = MARKET.texts(SYMBOL, as_of=AS_OF, days=MIN_BARS)

    await process(runtime, slot, run_id, event)
    await process(runtime, slot, run_id, event)  # the event delivered twice

    async with runtime.database.session() as session:
        [stored] = list(await session.scalars(select(FeatureSet)))
    assert (stored.run_id, stored.symbol, stored.as_of) == (run_id, SYMBOL, AS_OF)
    assert stored.feature_schema == FEATURE_SCHEMA
    assert stored.uri == runtime.store.uri_for(
        features_key(as_of=AS_OF, run_id=run_id, symbol=SYMBOL)
    )
    row = from_parquet_bytes(await runtime.store.get(stored.ref()))
    assert (row["symbol"].tolist(), row["date"].tolist()) == ([SYMBOL], [AS_OF])
    assert row["sentiment_count"].iloc[0] == (texts["date"] == AS_OF).sum()
    assert row["has_sentiment"].iloc[0] == 1
    task = await task_of(runtime, run_id=run_id, symbol=SYMBOL, stage=Stage.PROCESS)
    assert task.state == TaskState.SUCCESS
    [(envelope, announced)] = await queued_events(runtime)
    assert isinstance(announced, FeaturesReady)
    assert (envelope.run_id, envelope.symbol) == (run_id, SYMBOL)
    assert (announced.as_of, announced.feature_schema) == (AS_OF, FEATURE_SCHEMA)
    assert announced.features == stored.ref()


async def test_raw_data_without_texts_gives_a_row_without_sentiment(
    runtime: Runtime, slot: SentimentSlot
) -> None:
    run_id = await add_run(runtime, as_of=AS_OF, symbols=[SYMBOL], stage=Stage.PROCESS)

    await process(runtime, slot, run_id, await raw_data(runtime, SYMBOL, texts=False))

    async with runtime.database.session() as session:
        [stored] = list(await session.scalars(select(FeatureSet)))
    row = from_parquet_bytes(await runtime.store.get(stored.ref()))
    assert row["has_sentiment"].iloc[0] == 0
    assert row["sentiment_count"].iloc[0] == 0
    assert pd.isna(row["sentiment_mean"].iloc[0])  # missing, not a neutral 0


UNJUDGEABLE = ("акции упали на 10%", RUSSIAN[1], "\u200b\u200b\u200b", "😱", FRENCH[2], "[UNK]")
"""Texts the default model cannot judge: three in another language, two with no letters, one of
unknown tokens."""
UNJUDGEABLE_NOTE = (
    "6 texts not scored: 3 in another language (ru, fr), "
    "1 made mostly of tokens the model does not know, 2 with no letters"
)


def unscored_total(reason: str) -> float:
    """The processing metric of texts left unscored for `reason`, as scraped now."""
    value = REGISTRY.get_sample_value("marketsense_texts_unscored_total", {"reason": reason})
    return value or 0.0


def with_texts_of_the_day(texts: pd.DataFrame, replacements: tuple[str, ...]) -> pd.DataFrame:
    """`texts` with the run day's items replaced by items saying `replacements`."""
    of_the_day = texts["date"] == AS_OF
    template = texts[of_the_day].iloc[[0] * len(replacements)]
    new = template.assign(
        id=[f"{template['id'].iloc[0]}-{i}" for i in range(len(replacements))],
        text=list(replacements),
    )
    return pd.concat([texts[~of_the_day], new], ignore_index=True)


async def test_texts_the_model_cannot_judge_are_left_out_noted_and_counted(
    model: SentimentModel,
) -> None:
    texts = MARKET.texts(SYMBOL, as_of=AS_OF, days=3)
    judgeable = texts[texts["date"] == AS_OF]["text"].tolist()
    mixed = pd.concat(
        [texts, texts.iloc[:6].assign(date=AS_OF, text=list(UNJUDGEABLE))], ignore_index=True
    )
    before = {r: unscored_total(r) for r in ("foreign", "unknown_tokens", "no_letters")}
    notes: list[str] = []

    scored = await score_day(model, mixed, as_of=AS_OF, batch_size=4, notes=notes)

    np.testing.assert_allclose(scored["score"], model.scores(judgeable), atol=1e-6)
    assert notes == [UNJUDGEABLE_NOTE]
    assert unscored_total("foreign") - before["foreign"] == 3
    assert unscored_total("unknown_tokens") - before["unknown_tokens"] == 1
    assert unscored_total("no_letters") - before["no_letters"] == 2


async def test_texts_are_scored_as_normalised(model: SentimentModel) -> None:
    texts = MARKET.texts(SYMBOL, as_of=AS_OF, days=1).iloc[:1]
    plain = "Shares jumped after the company beat earnings estimates"
    hidden = "Sh\u200bares jum\u00adped after the company beat earnings estimates\u200d"

    [score] = (await score_day(model, texts.assign(text=hidden), as_of=AS_OF, batch_size=1))[
        "score"
    ]

    assert score == pytest.approx(float(model.scores([plain])[0]), abs=1e-6)


async def test_a_day_of_only_unjudgeable_texts_has_no_sentiment_and_says_why(
    runtime: Runtime, slot: SentimentSlot
) -> None:
    run_id = await add_run(runtime, as_of=AS_OF, symbols=[SYMBOL], stage=Stage.PROCESS)
    texts = with_texts_of_the_day(MARKET.texts(SYMBOL, as_of=AS_OF, days=60), UNJUDGEABLE)
    stored_texts = to_parquet_bytes(texts)
    event = await raw_data(runtime, SYMBOL)
    event = event.model_copy(
        update={"texts": await runtime.store.put(f"raw/{SYMBOL}/texts.parquet", stored_texts)}
    )

    await process(runtime, slot, run_id, event)

    async with runtime.database.session() as session:
        [stored] = list(await session.scalars(select(FeatureSet)))
    row = from_parquet_bytes(await runtime.store.get(stored.ref()))
    assert row["has_sentiment"].iloc[0] == 0
    assert row["sentiment_count"].iloc[0] == 0
    assert pd.isna(row["sentiment_mean"].iloc[0])
    task = await task_of(runtime, run_id=run_id, symbol=SYMBOL, stage=Stage.PROCESS)
    assert task.state == TaskState.SUCCESS
    assert task.notes == UNJUDGEABLE_NOTE
    # The texts themselves are kept as ingestion stored them.
    assert await runtime.store.get(event.texts) == stored_texts  # type: ignore[arg-type]


async def test_a_day_of_judgeable_texts_leaves_no_note(
    runtime: Runtime, slot: SentimentSlot
) -> None:
    run_id = await add_run(runtime, as_of=AS_OF, symbols=[SYMBOL], stage=Stage.PROCESS)

    await process(runtime, slot, run_id, await raw_data(runtime, SYMBOL))

    task = await task_of(runtime, run_id=run_id, symbol=SYMBOL, stage=Stage.PROCESS)
    assert (task.state, task.notes) == (TaskState.SUCCESS, None)


def _with_max_length(source: Path, directory: Path, max_length: int) -> Path:
    """The artifact in `source` with a manifest declaring `max_length` tokens per text."""
    directory.mkdir()
    for path in source.iterdir():
        if path.is_file() and path.name != "manifest.json":
            (directory / path.name).symlink_to(path)
    manifest = json.loads((source / "manifest.json").read_text())
    (directory / "manifest.json").write_text(json.dumps(manifest | {"max_length": max_length}))
    return directory


async def test_texts_are_cut_to_the_served_models_max_length_in_tokens(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    short = SentimentModel(_with_max_length(sentiment_model_dir, tmp_path / "short", 24))
    head = "Shares of the company surged after it beat estimates and raised its guidance. " * 2
    # Two texts of about 600 tokens that agree on their first 24 tokens and differ after them:
    # cut to 24 tokens they are the same text; uncut, the graph (512 positions) cannot run them.
    tails = (" The outlook is bleak and losses keep mounting.", " Record profits again.")
    texts = pd.DataFrame({"date": [AS_OF, AS_OF], "text": [head + tail * 60 for tail in tails]})
    assert all(len(short.encode([text])["input_ids"][0]) == 24 for text in texts["text"])

    scored = await score_day(short, texts, as_of=AS_OF, batch_size=2)

    assert len(scored) == 2
    assert np.isfinite(scored["score"]).all()
    assert scored["score"].iloc[0] == pytest.approx(scored["score"].iloc[1], abs=1e-6)
    assert scored["score"].iloc[0] > 0.2
