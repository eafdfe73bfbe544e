"""Alembic migrations build exactly the tables the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import alembic_config, current_revision, downgrade, upgrade
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
