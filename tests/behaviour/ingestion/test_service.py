"""Ingesting one symbol for a run: its bars and texts stored, recorded and announced together,
once, on every database and object store."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select, update

from marketsense.common.db.engine import Database
from marketsense.common.db.models import RawObject, Task
from marketsense.common.errors import NonRetryableError
from marketsense.common.events import RawDataReady
from marketsense.common.parquet import from_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.common.states import Stage, TaskState
from marketsense.common.store import ObjectStore
from marketsense.common.tasks import notes_of
from marketsense.ingestion.service import fetch_days, ingest_symbol, raw_key, texts_needed
from marketsense.ingestion.sources.base import SourceRejected, SymbolData
from marketsense.ingestion.sources.checks import BarChecks
from marketsense.ingestion.sources.simulated import SimulatedMarket
from tests.service_support import add_run, queued_events, service_runtime, task_of

AS_OF = dt.date(2026, 11, 20)


class Recorded:
    """A source answering what it is given, counting the fetches."""

    name = "recorded"

    def __init__(self, data: SymbolData):
        self.data = data
        self.fetches: list[tuple[str, dt.date, int]] = []

    async def fetch(self, symbol: str, *, as_of: dt.date, days: int) -> SymbolData:
        """The data given, whatever is asked."""
        self.fetches.append((symbol, as_of, days))
        return self.data


@pytest.fixture
async def runtime(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """Ingestion's runtime on an empty database and object store of each kind."""
    async with service_runtime(
        service="ingestion", database_url=database_url, store=store, home=tmp_path / "home"
    ) as started:
        yield started


def market_data(symbol: str = "AAA", *, issues: list[str] | None = None) -> SymbolData:
    """Sixty days of simulated bars and texts."""
    market = SimulatedMarket(seed=7)
    return SymbolData(
        bars=market.daily_bars(symbol, as_of=AS_OF, days=60),
        texts=market.texts(symbol, as_of=AS_OF, days=60),
        issues=issues or [],
    )


async def ingest(
    runtime: Runtime,
    source: Recorded,
    run_id: str,
    symbol: str = "AAA",
    checks: BarChecks | None = None,
) -> None:
    """Ingest one symbol of a run for 60 days."""
    await ingest_symbol(
        runtime=runtime,
        source=source,
        run_id=run_id,
        symbol=symbol,
        as_of=AS_OF,
        lookback_days=60,
        checks=checks,
    )


async def raw_rows(runtime: Runtime, run_id: str) -> dict[str, RawObject]:
    """The raw-object rows of a run, by kind."""
    async with runtime.database.session() as session:
        rows = await session.scalars(select(RawObject).where(RawObject.run_id == run_id))
        return {row.kind: row for row in rows}


def test_raw_keys_are_deterministic_per_day_run_symbol_and_file() -> None:
    key = raw_key(as_of=AS_OF, run_id="r1", symbol="AAA", name="bars.parquet")

    assert key == "raw/2026-11-20/r1/AAA/bars.parquet"
    assert key == raw_key(as_of=AS_OF, run_id="r1", symbol="AAA", name="bars.parquet")
    assert key != raw_key(as_of=AS_OF, run_id="r2", symbol="AAA", name="bars.parquet")


def symbol_with_texts_on(day: dt.date) -> str:
    """The first simulated symbol with texts on `day` (a quiet day has none)."""
    market = SimulatedMarket(seed=7)
    return next(
        symbol
        for symbol in (f"A{i:02d}" for i in range(100))
        if (market.texts(symbol, as_of=day, days=1)["date"] == day).any()
    )


async def test_a_daily_run_stores_its_bars_and_the_texts_of_its_day_announced_together(
    runtime: Runtime,
) -> None:
    symbol = symbol_with_texts_on(AS_OF)
    data = market_data(symbol, issues=[f"{symbol}: dropped 1 row with a missing price"])
    run_id = await add_run(runtime, as_of=AS_OF, symbols=[symbol], stage=Stage.INGEST)

    await ingest(runtime, Recorded(data), run_id, symbol)

    rows = await raw_rows(runtime, run_id)
    # The lookback's bars warm the features up; only the run's day has its texts read.
    days_texts = data.texts[data.texts["date"] == AS_OF]
    assert 0 < len(days_texts) < len(data.texts)
    assert {kind: row.rows for kind, row in rows.items()} == {
        "bars": len(data.bars),
        "texts": len(days_texts),
    }
    bars = from_parquet_bytes(await runtime.store.get(rows["bars"].ref()))
    texts = from_parquet_bytes(await runtime.store.get(rows["texts"].ref()))
    pd.testing.assert_frame_equal(bars, data.bars)
    assert texts["id"].tolist() == days_texts["id"].tolist()
    assert rows["bars"].uri == runtime.store.uri_for(
        raw_key(as_of=AS_OF, run_id=run_id, symbol=symbol, name="bars.parquet")
    )
    task = await task_of(runtime, run_id=run_id, symbol=symbol, stage=Stage.INGEST)
    assert task.state == TaskState.SUCCESS
    assert task.notes == f"{symbol}: dropped 1 row with a missing price"
    [(envelope, event)] = await queued_events(runtime)
    assert isinstance(event, RawDataReady)
    assert (envelope.run_id, envelope.symbol) == (run_id, symbol)
    assert (event.as_of, event.rows, event.text_items) == (AS_OF, len(data.bars), len(days_texts))
    assert event.start is None
    assert event.bars == rows["bars"].ref()
    assert event.texts == rows["texts"].ref()


async def test_a_symbol_ingested_already_is_not_fetched_again(runtime: Runtime) -> None:
    source = Recorded(market_data())
    run_id = await add_run(runtime, as_of=AS_OF, symbols=["AAA"], stage=Stage.INGEST)

    await ingest(runtime, source, run_id)
    await ingest(runtime, source, run_id)  # the event delivered twice

    assert source.fetches == [("AAA", AS_OF, 60)]
    assert len(await queued_events(runtime)) == 1


async def test_an_attempt_after_a_crash_overwrites_its_rows_instead_of_adding_more(
    runtime: Runtime,
) -> None:
    run_id = await add_run(runtime, as_of=AS_OF, symbols=["AAA"], stage=Stage.INGEST)
    await ingest(runtime, Recorded(market_data()), run_id)
    async with runtime.transaction() as session:  # as if the success had not been recorded
        await session.execute(
            update(Task).where(Task.run_id == run_id).values(state=TaskState.RUNNING)
        )
    shorter = SymbolData(bars=market_data().bars.tail(30), texts=market_data().texts.head(0))

    await ingest(runtime, Recorded(shorter), run_id)

    rows = await raw_rows(runtime, run_id)
    assert {kind: row.rows for kind, row in rows.items()} == {"bars": 30, "texts": 0}
    async with runtime.database.session() as session:
        count = len(list(await session.scalars(select(RawObject.id))))
    assert count == 2


async def test_a_source_without_bars_fails_the_symbol_for_good_and_stores_nothing(
    runtime: Runtime,
) -> None:
    empty = SymbolData(bars=market_data().bars.head(0), texts=market_data().texts)
    run_id = await add_run(runtime, as_of=AS_OF, symbols=["AAA"], stage=Stage.INGEST)

    with pytest.raises(NonRetryableError, match="recorded has no bars for AAA up to 2026-11-20"):
        await ingest(runtime, Recorded(empty), run_id)

    assert await raw_rows(runtime, run_id) == {}
    assert await queued_events(runtime) == []
    assert not await runtime.store.exists(
        raw_key(as_of=AS_OF, run_id=run_id, symbol="AAA", name="bars.parquet")
    )


async def test_a_symbol_that_fails_after_cleaning_keeps_the_cleaning_notes_on_its_error(
    runtime: Runtime,
) -> None:
    weekend_only = SymbolData(
        bars=market_data().bars.head(0),
        texts=market_data().texts.head(0),
        issues=["AAA: dropped 2 rows dated on days XNYS does not trade: 2026-11-21, 2026-11-22"],
    )
    run_id = await add_run(runtime, as_of=AS_OF, symbols=["AAA"], stage=Stage.INGEST)

    with pytest.raises(NonRetryableError, match="no bars for AAA") as raised:
        await ingest(runtime, Recorded(weekend_only), run_id)

    assert notes_of(raised.value) == weekend_only.issues


CLEANED = "AAA: dropped 1 row with a missing price"


def split_ten_sessions_before(data: SymbolData) -> SymbolData:
    """The data with its bars not adjusted for a 10-for-1 split ten sessions before the last."""
    bars = data.bars.copy()
    bars.loc[50:, ["open", "high", "low", "close"]] /= 10
    bars.loc[50:, "volume"] *= 10
    return SymbolData(bars=bars, texts=data.texts, issues=data.issues)


async def test_an_unadjusted_split_fails_the_symbol_for_good_keeping_the_notes(
    runtime: Runtime,
) -> None:
    data = split_ten_sessions_before(market_data(issues=[CLEANED]))
    day = data.bars["date"].iloc[50].isoformat()
    run_id = await add_run(runtime, as_of=AS_OF, symbols=["AAA"], stage=Stage.INGEST)

    with pytest.raises(SourceRejected) as raised:
        await ingest(runtime, Recorded(data), run_id)

    assert isinstance(raised.value, NonRetryableError)
    message = str(raised.value)
    assert message.startswith(
        f"AAA: prices look unadjusted for a 10-for-1 split on {day} (close x0."
    )
    assert "supply split-adjusted prices" in message
    first, second = notes_of(raised.value)
    assert first == CLEANED
    assert second.startswith(f"AAA: {day}: close moved x0.")
    assert "(a 10-for-1 split?)" in second
    assert await raw_rows(runtime, run_id) == {}
    assert await queued_events(runtime) == []


async def test_what_the_checks_find_is_noted_on_the_task_with_the_cleaning(
    runtime: Runtime,
) -> None:
    data = split_ten_sessions_before(market_data(issues=[CLEANED]))
    run_id = await add_run(runtime, as_of=AS_OF, symbols=["AAA"], stage=Stage.INGEST)

    await ingest(runtime, Recorded(data), run_id, checks=BarChecks(fail_on_split=False))

    task = await task_of(runtime, run_id=run_id, symbol="AAA", stage=Stage.INGEST)
    assert task.state == TaskState.SUCCESS
    first, second = (task.notes or "").splitlines()
    assert first == "AAA: dropped 1 row with a missing price"
    assert second.startswith(f"AAA: {data.bars['date'].iloc[50].isoformat()}: close moved x0.")
    assert "(a 10-for-1 split?)" in second


async def test_a_symbol_without_an_ingest_task_is_refused(runtime: Runtime) -> None:
    source = Recorded(market_data())
    run_id = await add_run(runtime, as_of=AS_OF, symbols=["AAA"], stage=Stage.INGEST)

    with pytest.raises(NonRetryableError, match="no ingest task"):
        await ingest(runtime, source, run_id, symbol="BBB")
    assert source.fetches == []


def test_a_backfill_fetches_the_lookback_before_its_first_day_and_every_session_of_its_range() -> (
    None
):
    # 2026-11-26 (Thanksgiving) is no session: 2026-11-23 to 2026-11-30 holds five.
    start, end = dt.date(2026, 11, 23), dt.date(2026, 11, 30)

    assert fetch_days(start=start, as_of=end, lookback_days=60, checks=BarChecks()) == 65
    assert fetch_days(start=None, as_of=end, lookback_days=60, checks=BarChecks()) == 60
    with pytest.raises(NonRetryableError, match="after its last day 2026-11-23: swap them"):
        fetch_days(start=end, as_of=start, lookback_days=60, checks=BarChecks())
    with pytest.raises(NonRetryableError, match="cannot backfill 1900-01-02"):
        fetch_days(start=dt.date(1900, 1, 2), as_of=end, lookback_days=60, checks=BarChecks())


def test_only_the_texts_of_the_days_given_features_are_kept() -> None:
    texts = market_data().texts
    first = sorted(set(texts["date"]))[-5]

    kept = texts_needed(texts, start=first, as_of=AS_OF)

    assert set(kept["date"]) == {day for day in texts["date"] if first <= day <= AS_OF}
    assert texts_needed(texts.head(0), start=first, as_of=AS_OF).empty
