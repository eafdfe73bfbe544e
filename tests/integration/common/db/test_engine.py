"""A pooled PostgreSQL connection the server has closed is replaced at checkout, not used."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from marketsense.common.db.engine import Database
from tests.conftest import INTEGRATION, eventually

pytestmark = [INTEGRATION, pytest.mark.timeout(60)]


async def _backend_pid(database: Database) -> tuple[int, Any]:
    """The server pid of the connection a session checks out, and its asyncpg connection."""
    async with database.session() as session:
        pid: int = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        raw = await (await session.connection()).get_raw_connection()
        driver = raw.driver_connection
        await session.commit()
    return pid, driver


async def test_a_connection_the_server_terminated_is_replaced_before_use(
    pg_database_url: str,
) -> None:
    database, admin = Database(pg_database_url, pool_size=1), Database(pg_database_url)
    try:
        pooled, driver = await _backend_pid(database)
        async with admin.session() as session:
            # What a server restart or an idle-session timeout does to a pooled connection.
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled})
            await session.commit()
        # The server drops the backend from pg_stat_activity before its socket closes, so wait
        # for what the checkout check reads: the client having seen the connection close.
        await eventually(driver.is_closed)
        # With no ping before checkout, this statement runs on a fresh connection, not the dead one.
        assert (await _backend_pid(database))[0] != pooled
    finally:
        await database.dispose()
        await admin.dispose()
