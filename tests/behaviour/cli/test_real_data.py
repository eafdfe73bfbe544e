"""Runs of the whole pipeline in one process on real daily prices through the `files` source: a
holiday, an unadjusted split (which fails its symbol alone) and a daylight-saving change, as a
user's own exports bring them."""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from marketsense.cli.embedded import PipelineSettings, build_pipeline_app
from marketsense.common.auth import Role
from marketsense.common.db.models import FeatureSet, RawObject, Task
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage
from tests.conftest import eventually
from tests.model_registry_rows import new_api_key

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "real"
"""The committed sample: GSPC, IXIC and GOOG, July 2005 to December 2008."""

SYMBOLS = ["GSPC", "IXIC", "GOOG"]

THANKSGIVING = dt.date(2008, 11, 27)
"""The exchange is closed."""

BLACK_FRIDAY = dt.date(2008, 11, 28)
"""The session after Thanksgiving, closing early at 13:00 New York time."""

MONDAY_AFTER = dt.date(2008, 12, 1)
"""The run's day for the split; ten sessions after the split's first day."""

SPLIT_SYMBOL = "GOOG"
SPLIT_DAY = dt.date(2008, 11, 14)
"""First session quoted after an unadjusted 10-for-1 split that one test makes in GOOG's file."""

DST_DAY = dt.date(2008, 3, 10)
"""First session after clocks moved forward on 9 March 2008: GOOG's file changes offset here."""


def split_in_file(path: Path, *, first_day: dt.date, ratio: int) -> None:
    """Quote the bars from `first_day` on as after an unadjusted `ratio`-for-1 split: prices
    divided by `ratio`, volumes multiplied by it, dates written as before."""
    bars = pd.read_csv(path, dtype={"date": "str"})
    after = bars["date"].str[:10] >= first_day.isoformat()
    for column in ("open", "high", "low", "close"):
        bars.loc[after, column] = bars.loc[after, column] / ratio
    bars.loc[after, "volume"] = bars.loc[after, "volume"] * ratio
    bars.to_csv(path, index=False)


@pytest.fixture
def real_files(tmp_path: Path) -> Path:
    """A copy of the sample, for a test to change."""
    root = tmp_path / "real"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.md"))
    return root


@dataclass(frozen=True)
class Pipeline:
    """The one-process pipeline's API, with a publisher's key, and its runtime."""

    api: httpx.AsyncClient
    runtime: Runtime
    files: Path
    """The folder the `files` source reads, read afresh by every fetch."""


@pytest.fixture
async def pipeline(
    tmp_path: Path, real_files: Path, predictor_dir: Path, sentiment_model_dir: Path
) -> AsyncIterator[Pipeline]:
    """The pipeline on the embedded default with the `files` source over the real sample."""
    settings = PipelineSettings(
        home=tmp_path / "home",
        handler_retry_base_seconds=0.01,
        predictor_path=predictor_dir,
        sentiment_model_path=sentiment_model_dir,
        source="files",
        files_root=real_files,
        failure_threshold=0.5,  # one symbol of three failing leaves a PARTIAL run
    )
    app = build_pipeline_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        runtime: Runtime = app.state.runtime
        api.headers["X-API-Key"] = await new_api_key(runtime.database, role=Role.PUBLISHER)
        yield Pipeline(api, runtime, real_files)


async def run_to_the_end(api: httpx.AsyncClient, as_of: dt.date) -> dict[str, Any]:
    """Start a run over every symbol and wait for its final state."""
    created = await api.post("/v1/runs", json={"as_of": as_of.isoformat(), "symbols": SYMBOLS})
    assert created.status_code == 201, created.text
    run: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal run
        run = (await api.get(f"/v1/runs/{created.json()['id']}")).json()
        return run["state"] not in {"PENDING", "RUNNING"}

    await eventually(done, timeout=90, interval=0.1)
    return run


async def assert_a_prediction_per_symbol(api: httpx.AsyncClient, run: dict[str, Any]) -> None:
    """Every symbol has the run's prediction, a probability strictly between 0 and 1."""
    for symbol in SYMBOLS:
        latest = (await api.get(f"/v1/predictions/{symbol}/latest")).json()
        assert latest["run_id"] == run["id"], latest
        assert latest["as_of"] == run["as_of"]
        assert math.isfinite(latest["prob_up"])
        assert 0.0 < latest["prob_up"] < 1.0, latest


async def raw_texts(runtime: Runtime, run_id: str) -> pd.DataFrame:
    """Every symbol's texts as ingestion stored them for a run."""
    async with runtime.database.session() as session:
        rows = (
            await session.scalars(
                select(RawObject).where(RawObject.run_id == run_id, RawObject.kind == "texts")
            )
        ).all()
    frames = [pd.read_parquet(io.BytesIO(await runtime.store.get(row.ref()))) for row in rows]
    texts = pd.concat(frames, ignore_index=True)
    texts["date"] = pd.to_datetime(texts["date"]).dt.date
    return texts.set_index("id")


async def feature_rows(runtime: Runtime, run_id: str) -> pd.DataFrame:
    """Every symbol's feature row as processing stored it for a run, indexed by symbol."""
    async with runtime.database.session() as session:
        rows = (await session.scalars(select(FeatureSet).where(FeatureSet.run_id == run_id))).all()
    frames = [
        pd.read_parquet(io.BytesIO(await runtime.store.get(row.ref()))).assign(symbol=row.symbol)
        for row in rows
    ]
    return pd.concat(frames, ignore_index=True).set_index("symbol")


async def ingest_attempts(runtime: Runtime, run_id: str) -> dict[str, int]:
    """Attempts of each symbol's ingest task in a run."""
    async with runtime.database.session() as session:
        tasks = (
            await session.scalars(
                select(Task).where(Task.run_id == run_id, Task.stage == Stage.INGEST)
            )
        ).all()
    return {task.symbol: task.attempts for task in tasks}


async def test_a_run_for_thanksgiving_is_refused_naming_the_next_session(
    pipeline: Pipeline,
) -> None:
    api = pipeline.api
    refused = await api.post(
        "/v1/runs", json={"as_of": THANKSGIVING.isoformat(), "symbols": SYMBOLS}
    )

    assert 400 <= refused.status_code < 500, refused.text
    assert BLACK_FRIDAY.isoformat() in refused.text
    listed = (await api.get("/v1/runs", params={"as_of": THANKSGIVING.isoformat()})).json()
    assert listed["items"] == []


async def test_a_run_after_thanksgiving_fails_the_unadjusted_split_alone_and_counts_holiday_texts(
    pipeline: Pipeline,
) -> None:
    split_in_file(pipeline.files / "bars" / f"{SPLIT_SYMBOL}.csv", first_day=SPLIT_DAY, ratio=10)

    run = await run_to_the_end(pipeline.api, MONDAY_AFTER)

    assert run["state"] == "PARTIAL", run
    (failed,) = run["failed"]
    assert (failed["symbol"], failed["stage"], failed["attempts"]) == (SPLIT_SYMBOL, "ingest", 1)
    error = failed["last_error"]
    assert f"prices look unadjusted for a 10-for-1 split on {SPLIT_DAY.isoformat()}" in error
    assert re.search(r"close x0\.(099|100|101)", error), error
    assert "supply split-adjusted prices" in error
    notes = {(n["symbol"], n["stage"]): " | ".join(n["notes"]) for n in run["cleaned"]}
    split_note = notes.get((SPLIT_SYMBOL, "ingest"), "")
    assert f"{SPLIT_DAY.isoformat()}: close moved x0." in split_note, notes
    assert "(a 10-for-1 split?)" in split_note, split_note
    for symbol in ("GSPC", "IXIC"):
        latest = (await pipeline.api.get(f"/v1/predictions/{symbol}/latest")).json()
        assert latest["run_id"] == run["id"], latest
        assert 0.0 < latest["prob_up"] < 1.0, latest
    unscored = await pipeline.api.get(f"/v1/predictions/{SPLIT_SYMBOL}/latest")
    assert unscored.status_code == 404, unscored.text

    texts = await raw_texts(pipeline.runtime, run["id"])  # GOOG's were not stored
    # A run stores the texts of its own day. Friday closed at 13:00: a text at 13:15 New York
    # time counts for Monday.
    assert set(texts["date"]) == {MONDAY_AFTER}
    assert texts.loc["gspc-081128-after", "date"] == MONDAY_AFTER


async def test_the_session_after_thanksgiving_scores_the_english_texts_of_the_holiday(
    pipeline: Pipeline,
) -> None:
    run = await run_to_the_end(pipeline.api, BLACK_FRIDAY)

    assert run["state"] == "SUCCESS", run
    await assert_a_prediction_per_symbol(pipeline.api, run)
    features = await feature_rows(pipeline.runtime, run["id"])
    # Wednesday after the close, Thursday, and Friday before the 13:00 close; the headline in
    # French, Spanish or German is kept but not scored.
    assert features["sentiment_count"].to_dict() == {"GSPC": 2, "IXIC": 3, "GOOG": 3}
    texts = await raw_texts(pipeline.runtime, run["id"])
    after_close_holiday_or_before_the_early_close = [
        "gspc-081126-after",
        "gspc-081127-holiday",
        "ixic-081126-after",
        "ixic-081127-holiday",
        "ixic-081128",  # 11:10, before the 13:00 close
    ]
    assert (
        texts.loc[after_close_holiday_or_before_the_early_close, "date"].tolist()
        == [BLACK_FRIDAY] * 5
    )
    assert "gspc-081128-after" not in texts.index  # 13:15: after the early close, Monday's
    assert THANKSGIVING not in set(texts["date"])
    notes = {(n["symbol"], n["stage"]): " | ".join(n["notes"]) for n in run["cleaned"]}
    for symbol in SYMBOLS:
        assert "another language" in notes.get((symbol, "process"), ""), notes


async def test_a_run_across_the_daylight_saving_change_reads_mixed_offsets_first_time(
    pipeline: Pipeline,
) -> None:
    run = await run_to_the_end(pipeline.api, DST_DAY)

    assert run["state"] == "SUCCESS", run
    assert run["failed"] == []
    assert await ingest_attempts(pipeline.runtime, run["id"]) == dict.fromkeys(SYMBOLS, 1)
    await assert_a_prediction_per_symbol(pipeline.api, run)
    texts = await raw_texts(pipeline.runtime, run["id"])
    # Friday 21:30 UTC was 16:30 in New York, after the close: Monday's.
    assert texts.loc["goog-080307-after", "date"] == DST_DAY
    assert texts.loc["goog-080310", "date"] == DST_DAY  # 15:15 in New York
    # Monday 20:30 UTC is 16:30 in New York once clocks moved: after the close, Tuesday's.
    assert "goog-080310-after" not in texts.index
