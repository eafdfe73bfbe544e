"""The engine and its sessions on SQLite and PostgreSQL: readiness, foreign keys on both, and the
embedded file's folder and journal."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError

from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.db.models import Run, Task
from tests.e2e.processes import free_port

AS_OF = dt.date(2026, 11, 20)


async def add_run(database: Database) -> str:
    """A committed run; its id."""
    run_id = str(uuid.uuid4())
    async with database.session() as session:
        session.add(Run(id=run_id, as_of=AS_OF, state="RUNNING", symbols=1))
        await session.commit()
    return run_id


async def test_a_database_that_answers_is_healthy(database: Database) -> None:
    assert await database.healthy() is True


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql+asyncpg://app:pw@127.0.0.1:{port}/app", id="postgres-refused"),
        pytest.param("sqlite+aiosqlite:///{missing}/sub/x.db", id="sqlite-folder-gone"),
    ],
)
async def test_a_database_that_cannot_be_reached_is_not_healthy(url: str, tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    database = Database(url.format(port=free_port(), missing=missing))
    if database.is_sqlite:
        # The folder was made for the file; an operator's volume that vanished takes it away.
        (missing / "sub").rmdir()
        missing.rmdir()
    try:
        assert await database.healthy() is False
    finally:
        await database.dispose()


def test_the_kind_of_database_is_read_from_the_url(tmp_path: Path) -> None:
    assert Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}").is_sqlite is True
    assert Database("postgresql+asyncpg://a:b@127.0.0.1:1/x").is_sqlite is False


async def test_the_embedded_file_gets_its_folder_and_a_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "marketsense.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with database.engine.connect() as conn:
            journal = await conn.scalar(text("PRAGMA journal_mode"))
            timeout = await conn.scalar(text("PRAGMA busy_timeout"))
    finally:
        await database.dispose()

    assert path.parent.is_dir()
    assert (journal, timeout) == ("wal", 30000)


async def test_a_row_pointing_at_a_missing_parent_is_refused(database: Database) -> None:
    async with database.session() as session:
        session.add(Task(run_id="no-such-run", symbol="AAA", stage="ingest", state="PENDING"))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_deleting_a_run_deletes_its_tasks(database: Database) -> None:
    run_id = await add_run(database)
    async with database.session() as session:
        session.add(Task(run_id=run_id, symbol="AAA", stage="ingest", state="PENDING"))
        await session.commit()

    async with database.session() as session:
        await session.execute(delete(Run).where(Run.id == run_id))
        await session.commit()
        assert await session.scalar(select(func.count()).select_from(Task)) == 0


async def test_what_a_session_does_not_commit_is_not_kept(database: Database) -> None:
    async with database.session() as session:
        session.add(Run(id=str(uuid.uuid4()), as_of=AS_OF, state="RUNNING", symbols=1))
        await session.flush()

    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(Run)) == 0


async def test_rows_stay_readable_after_their_session_committed_and_closed(
    database: Database,
) -> None:
    async with database.session() as session:
        run = Run(id=str(uuid.uuid4()), as_of=AS_OF, state="RUNNING", symbols=3)
        session.add(run)
        await session.commit()

    # Expired attributes would need a query, which an async session cannot run on access.
    assert (run.state, run.symbols, run.as_of) == ("RUNNING", 3, AS_OF)


async def test_a_disposed_database_connects_again_when_used(database: Database) -> None:
    run_id = await add_run(database)

    await database.dispose()

    async with database.session() as session:
        assert await session.get(Run, run_id) is not None


async def test_a_new_sqlite_file_migrates_and_holds_rows(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'x.db'}")
    try:
        await upgrade(database)
        run_id = await add_run(database)
        async with database.session() as session:
            assert (await session.get(Run, run_id)) is not None
    finally:
        await database.dispose()
