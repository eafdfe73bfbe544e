"""Run Alembic migrations on PostgreSQL or SQLite from async code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from marketsense.common.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Upgrade the database to a revision (the newest by default)."""
    await _with_connection(database, lambda cfg: command.upgrade(cfg, revision))


async def upgrade_url(url: str) -> str | None:
    """Upgrade the database at `url` to the newest revision; the revision it is then at."""
    database = Database(url)
    try:
        await upgrade(database)
        return await current_revision(database)
    finally:
        await database.dispose()


async def downgrade(database: Database, revision: str) -> None:
    """Downgrade the database to a revision."""
    await _with_connection(database, lambda cfg: command.downgrade(cfg, revision))


async def current_revision(database: Database) -> str | None:
    """The revision the database is at, or None for an empty database."""
    async with database.engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def _with_connection(database: Database, action: Any) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        action(config)

    async with database.engine.begin() as conn:
        await conn.run_sync(run)
