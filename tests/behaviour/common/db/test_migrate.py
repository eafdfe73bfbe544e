"""Alembic migrations build exactly the tables the models declare, on SQLite and PostgreSQL; and
`python -m marketsense.common.db`, the chart's migration Job, migrates or says what to fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import (
    alembic_config,
    current_revision,
    downgrade,
    upgrade,
    upgrade_url,
)
from marketsense.common.db.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "compare_server_default": False},
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    """Tables in the database other than Alembic's own bookkeeping."""
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def test_database_at_head_matches_the_models_exactly(database: Database) -> None:
    assert await current_revision(database) == _head()

    async with database.engine.connect() as conn:
        differences = await conn.run_sync(_differences)

    assert differences == [], "models and migrations disagree; add a migration"


async def test_downgrade_to_base_drops_every_table_and_upgrade_rebuilds_them(
    database: Database,
) -> None:
    expected = {table.name for table in Base.metadata.sorted_tables}
    try:
        await downgrade(database, "base")

        assert await current_revision(database) is None
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()

        await upgrade(database)

        assert await current_revision(database) == _head()
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_tables) == expected
            assert await conn.run_sync(_differences) == []
    finally:
        # The PostgreSQL database is shared by the session: leave it at head whatever happened.
        await upgrade(database)


async def test_upgrade_twice_is_a_no_op(database: Database) -> None:
    before = await current_revision(database)

    await upgrade(database)

    assert await current_revision(database) == before
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


def _migrate(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSENSE_")}
    return subprocess.run(
        [sys.executable, "-m", "marketsense.common.db"],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migration_job_brings_a_new_database_to_the_newest_revision(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    first = _migrate(MARKETSENSE_DATABASE_URL=url)
    second = _migrate(MARKETSENSE_DATABASE_URL=url)

    assert (first.returncode, first.stdout.strip()) == (0, f"database at revision {head}")
    assert (second.returncode, second.stdout.strip()) == (0, f"database at revision {head}")


def test_migration_job_without_a_database_url_exits_2() -> None:
    done = _migrate()

    assert done.returncode == 2
    assert done.stderr.strip() == "error: set MARKETSENSE_DATABASE_URL to the database to migrate"


def test_migration_job_on_an_unreachable_database_exits_1_with_the_setting_to_check() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    done = _migrate(MARKETSENSE_DATABASE_URL=f"postgresql://app:secret-pw@127.0.0.1:{port}/app")

    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot reach the database (")
    assert done.stderr.strip().endswith("check MARKETSENSE_DATABASE_URL")
    assert "secret-pw" not in done.stderr + done.stdout


async def test_upgrade_url_migrates_a_new_database_and_names_the_revision(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'fresh.db'}"

    assert await upgrade_url(url) == _head()
    assert await upgrade_url(url) == _head()
