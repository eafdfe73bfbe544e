"""Stored times on SQLite and PostgreSQL read back aware and in UTC, and compare by instant with
aware values of any zone; a stored object's row gives back the reference it was pointed at."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import select

from marketsense.common.db.engine import Database
from marketsense.common.db.models import RawObject, Run
from marketsense.common.events import ObjectRef

AS_OF = dt.date(2026, 11, 20)
NEW_YORK = dt.timezone(dt.timedelta(hours=-5))
KOLKATA = dt.timezone(dt.timedelta(hours=5, minutes=30))
CLOSE_UTC = dt.datetime(2026, 11, 20, 21, 0, 0, 123456, tzinfo=dt.UTC)
"""The US close of the test day, with microseconds, which both engines keep."""


async def finished_run(database: Database, finished_at: dt.datetime | None) -> str:
    """A run that finished at `finished_at` (as given, aware or naive); its id."""
    run_id = str(uuid.uuid4())
    async with database.session() as session:
        session.add(
            Run(id=run_id, as_of=AS_OF, state="SUCCESS", symbols=1, finished_at=finished_at)
        )
        await session.commit()
    return run_id


async def read_run(database: Database, run_id: str) -> Run:
    """The run as a new session reads it from the database."""
    async with database.session() as session:
        run = await session.get(Run, run_id)
    assert run is not None
    return run


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(CLOSE_UTC, id="aware-utc"),
        pytest.param(CLOSE_UTC.astimezone(NEW_YORK), id="aware-new-york"),
        pytest.param(CLOSE_UTC.astimezone(KOLKATA), id="aware-half-hour-offset"),
        pytest.param(CLOSE_UTC.replace(tzinfo=None), id="naive-taken-as-utc"),
    ],
)
async def test_a_stored_time_reads_back_as_the_same_instant_aware_in_utc(
    database: Database, written: dt.datetime
) -> None:
    run_id = await finished_run(database, written)

    read = (await read_run(database, run_id)).finished_at

    assert read is not None
    assert read == CLOSE_UTC
    assert read.tzinfo is dt.UTC


async def test_an_unset_time_stays_unset(database: Database) -> None:
    run_id = await finished_run(database, None)

    assert (await read_run(database, run_id)).finished_at is None


async def test_a_time_the_database_sets_reads_back_aware_and_now(database: Database) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=1)
    run_id = await finished_run(database, None)

    created = (await read_run(database, run_id)).created_at

    assert created.tzinfo is dt.UTC
    assert before <= created <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


@pytest.mark.parametrize("zone", [dt.UTC, NEW_YORK, KOLKATA], ids=["utc", "new-york", "kolkata"])
async def test_queries_compare_stored_times_with_aware_values_by_instant(
    database: Database, zone: dt.timezone
) -> None:
    early = await finished_run(database, CLOSE_UTC - dt.timedelta(hours=1))
    late = await finished_run(database, CLOSE_UTC + dt.timedelta(hours=1))
    cutoff = CLOSE_UTC.astimezone(zone)

    async with database.session() as session:
        after = list(await session.scalars(select(Run.id).where(Run.finished_at > cutoff)))
        before = list(await session.scalars(select(Run.id).where(Run.finished_at <= cutoff)))
        window = list(
            await session.scalars(
                select(Run.id).where(
                    Run.finished_at.between(
                        cutoff - dt.timedelta(minutes=61), cutoff - dt.timedelta(minutes=59)
                    )
                )
            )
        )

    assert (after, before, window) == ([late], [early], [early])


async def test_a_stored_objects_row_gives_back_the_reference_it_points_at(
    database: Database,
) -> None:
    ref = ObjectRef(
        uri="s3://marketsense/raw/2026-11-20/r1/AAPL/bars.parquet",
        sha256="0123456789abcdef" * 4,
        size=5 * 1024**3,  # beyond 32 bits: a BIGINT column
    )
    run_id = await finished_run(database, None)
    row = RawObject(run_id=run_id, symbol="AAPL", as_of=AS_OF, kind="bars", rows=60)
    row.point_at(ref)
    async with database.session() as session:
        session.add(row)
        await session.commit()

    async with database.session() as session:
        stored = await session.scalar(select(RawObject).where(RawObject.run_id == run_id))
    assert stored is not None
    assert stored.ref() == ref
    assert (stored.uri, stored.sha256, stored.size) == (ref.uri, ref.sha256, ref.size)


async def test_pointing_a_row_at_a_new_object_replaces_all_three_columns(
    database: Database,
) -> None:
    old = ObjectRef(uri="file:///objects/a", sha256="aa" * 32, size=1)
    new = ObjectRef(uri="file:///objects/b", sha256="bb" * 32, size=0)
    row = RawObject(run_id="r", symbol="AAPL", as_of=AS_OF, kind="bars", rows=0)

    row.point_at(old)
    row.point_at(new)

    assert row.ref() == new
