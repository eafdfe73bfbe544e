"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from marketsense.common.db.engine import Database


@pytest.fixture
async def pg_database(fresh_pg_database_url: str) -> AsyncIterator[Database]:
    """The session's PostgreSQL database, which the service processes under test share."""
    database = Database(fresh_pg_database_url)
    yield database
    await database.dispose()
