"""Dead-letter rows: what a record says of itself, read as far as it can be; listing with
filters; choosing records to replay; claiming one for replay with compare-and-set."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from marketsense.common.bus import Record
from marketsense.common.db.engine import Database
from marketsense.common.db.models import DeadLetter
from marketsense.common.events import Envelope, IngestRequested, ObjectRef, RawDataReady
from marketsense.orchestrator.dead_letters.service import (
    claim_replay,
    dead_letter_row,
    list_dead_letters,
    selected_dead_letters,
)
from tests.conftest import TEST_AS_OF

PREFIX = "prod."
"""The deployment's topic prefix the records carry."""
REQUEST = Envelope.wrap(
    IngestRequested(as_of=TEST_AS_OF, lookback_days=30), run_id="run-1", symbol="AAPL"
)


def _record(
    value: bytes,
    *,
    offset: int = 0,
    topic: str = "ingest.requested",
    key: str | None = "AAPL",
    headers: dict[str, bytes] | None = None,
) -> Record:
    """A record on `topic`'s dead-letter topic, with the headers the bus adds unless given."""
    given = {
        "x-dlq-original-topic": f"{PREFIX}{topic}".encode(),
        "x-dlq-error": b"NonRetryableError: no ingest task",
        "x-dlq-attempts": b"3",
        "x-dlq-failed-at": b"2026-11-20T21:30:05+00:00",
    }
    return Record(
        topic=f"{PREFIX}{topic}.dlq",
        partition=2,
        offset=offset,
        key=key,
        value=value,
        headers=tuple((given if headers is None else headers).items()),
    )


def test_a_well_formed_record_is_indexed_with_everything_it_says_of_itself() -> None:
    record = _record(REQUEST.to_bytes(), offset=41)
    record = record._replace(headers=(*record.headers, ("traceparent", b"00-abc")))

    row = dead_letter_row(record, topic_prefix=PREFIX)

    assert (row.dlq_topic, row.dlq_partition, row.dlq_offset) == (
        "prod.ingest.requested.dlq",
        2,
        41,
    )
    assert (row.original_topic, row.key, row.value) == ("ingest.requested", "AAPL", record.value)
    assert (row.event_type, row.run_id, row.symbol) == ("ingest.requested", "run-1", "AAPL")
    assert (row.error, row.attempts) == ("NonRetryableError: no ingest task", 3)
    assert row.failed_at == dt.datetime(2026, 11, 20, 21, 30, 5, tzinfo=dt.UTC)
    assert row.recorded_at.tzinfo is not None
    # Only the dead-letter headers are kept: the others are the transport's, not the failure's.
    assert json.loads(row.headers) == {
        "x-dlq-attempts": "3",
        "x-dlq-error": "NonRetryableError: no ingest task",
        "x-dlq-failed-at": "2026-11-20T21:30:05+00:00",
        "x-dlq-original-topic": "prod.ingest.requested",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"{not json", (None, None, None)),
        (b"\xff\xfe binary", (None, None, None)),
        (b"[1, 2]", (None, None, None)),
        (b'"just a string"', (None, None, None)),
        # An envelope the index cannot validate still says what it can, field by field.
        (b'{"type": "raw.ready", "run_id": 7, "symbol": "MSFT"}', ("raw.ready", None, "MSFT")),
        (b'{"type": "x", "run_id": "r", "symbol": ["A"], "schema_version": 99}', ("x", "r", None)),
    ],
)
def test_a_malformed_record_is_indexed_with_as_much_as_it_says(
    value: bytes, expected: tuple[str | None, str | None, str | None]
) -> None:
    row = dead_letter_row(_record(value), topic_prefix=PREFIX)

    assert (row.event_type, row.run_id, row.symbol) == expected
    assert row.value == value
    assert row.original_topic == "ingest.requested"


def test_missing_or_unreadable_headers_fall_back_to_the_topic_and_to_nothing() -> None:
    bare = _record(b"{", topic="raw.ready", key=None, headers={})
    garbled = _record(
        b"{",
        headers={
            "x-dlq-attempts": b"three",
            "x-dlq-failed-at": b"yesterday evening",
            "x-dlq-error": b"",
        },
    )

    first = dead_letter_row(bare, topic_prefix=PREFIX)
    second = dead_letter_row(garbled, topic_prefix=PREFIX)

    assert (first.original_topic, first.key, first.error, first.attempts) == (
        "raw.ready",
        None,
        "",
        0,
    )
    assert (first.failed_at, first.headers) == (None, "{}")
    assert second.original_topic == "ingest.requested"
    assert (second.attempts, second.failed_at, second.error) == (0, None, "")


def test_values_longer_than_their_columns_are_clipped() -> None:
    long = json.dumps({"type": "t" * 100, "run_id": "r" * 100, "symbol": "S" * 100}).encode()

    row = dead_letter_row(_record(long, key="K" * 300), topic_prefix=PREFIX)

    assert (len(row.event_type or ""), len(row.run_id or ""), len(row.symbol or "")) == (64, 36, 32)
    assert len(row.key or "") == 255


async def _indexed(database: Database, *records: Record) -> list[DeadLetter]:
    async with database.session() as session:
        rows = [dead_letter_row(r, topic_prefix=PREFIX) for r in records]
        session.add_all(rows)
        await session.commit()
        return rows


async def test_listing_filters_by_run_topic_and_replay_newest_first_a_page_at_a_time(
    database: Database,
) -> None:
    bars = ObjectRef(uri="file:///raw/MSFT.parquet", sha256="0" * 64, size=1)
    raw = Envelope.wrap(
        RawDataReady(as_of=TEST_AS_OF, bars=bars, rows=1), run_id="run-2", symbol="MSFT"
    )
    rows = await _indexed(
        database,
        _record(REQUEST.to_bytes(), offset=0),
        _record(REQUEST.to_bytes(), offset=1),
        _record(raw.to_bytes(), offset=2, topic="raw.ready"),
        _record(b"{not json", offset=3),
    )
    ids = [row.id for row in rows]
    async with database.session() as session:
        assert await claim_replay(
            session, rows[1], actor="ops", now=dt.datetime.now(dt.UTC), force=False
        )
        await session.commit()

        async def listed(**filters: object) -> list[int]:
            found = await list_dead_letters(session, **filters)  # type: ignore[arg-type]
            return [row.id for row in found]

        assert await listed() == ids[::-1]
        assert await listed(run_id="run-1") == [ids[1], ids[0]]
        assert await listed(topic="ingest.requested") == [ids[3], ids[1], ids[0]]
        assert await listed(topic="raw.ready.dlq") == [ids[2]]
        assert await listed(replayed=True) == [ids[1]]
        assert await listed(replayed=False) == [ids[3], ids[2], ids[0]]
        assert await listed(limit=2) == [ids[3], ids[2]]
        assert await listed(limit=2, before_id=ids[2]) == [ids[1], ids[0]]
        assert await listed(run_id="run-1", replayed=False, topic="ingest.requested") == [ids[0]]


async def test_replay_selects_by_id_or_else_by_run_oldest_first(database: Database) -> None:
    other = Envelope.wrap(
        IngestRequested(as_of=TEST_AS_OF, lookback_days=30), run_id="run-9", symbol="MSFT"
    )
    rows = await _indexed(
        database,
        _record(REQUEST.to_bytes(), offset=0),
        _record(other.to_bytes(), offset=1),
        _record(REQUEST.to_bytes(), offset=2),
    )
    first, second, third = (row.id for row in rows)
    async with database.session() as session:
        by_id = await selected_dead_letters(session, ids=[third, first, third], run_id=None)
        by_run = await selected_dead_letters(session, ids=None, run_id="run-1")
        unknown = await selected_dead_letters(session, ids=[third + 100], run_id=None)

    assert [row.id for row in by_id] == [first, third]
    assert [row.id for row in by_run] == [first, third]
    assert unknown == []
    assert second not in {row.id for row in by_run}


def _claimed(row: DeadLetter) -> tuple[dt.datetime | None, str | None]:
    return row.replayed_at, row.replayed_by


async def test_claiming_a_replay_is_compare_and_set_and_force_claims_again(
    database: Database,
) -> None:
    [row] = await _indexed(database, _record(REQUEST.to_bytes()))
    early = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
    late = early + dt.timedelta(hours=1)

    async with database.session() as stale:
        # Another replica loaded the row before this one claimed it.
        stale_row = await stale.get(DeadLetter, row.id)
        assert stale_row is not None
        assert stale_row.replayed_at is None
        async with database.session() as session:
            fresh = await session.get(DeadLetter, row.id)
            assert fresh is not None
            assert await claim_replay(session, fresh, actor="first", now=early, force=False)
            await session.commit()
        assert not await claim_replay(stale, stale_row, actor="second", now=late, force=False)
        assert _claimed(stale_row) == (None, None)
        assert await claim_replay(stale, stale_row, actor="forced", now=late, force=True)
        assert _claimed(stale_row) == (late, "forced")
        await stale.commit()

    async with database.session() as session:
        stored = await session.scalar(select(DeadLetter).where(DeadLetter.id == row.id))
    assert stored is not None
    assert (stored.replayed_at, stored.replayed_by) == (late, "forced")


async def test_claiming_a_row_that_is_not_indexed_claims_nothing(database: Database) -> None:
    ghost = dead_letter_row(_record(REQUEST.to_bytes()), topic_prefix=PREFIX)
    ghost.id = 987654
    async with database.session() as session:
        claimed = await claim_replay(
            session, ghost, actor="ops", now=dt.datetime.now(dt.UTC), force=True
        )

    assert claimed is False
    assert ghost.replayed_at is None
