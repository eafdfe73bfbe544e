"""A pooled PostgreSQL connection the server has closed is replaced at checkout, not used."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from marketsense.common.db.engine import Database
from tests.conftest import INTEGRATION, eventually

pytestmark = [INTEGRATION, pytest.mark.timeout(60)]


async def _backend_pid(database: Database) -> int:
    async with database.session() as session:
        pid: int = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await session.commit()
    return pid


async def test_a_connection_the_server_terminated_is_replaced_before_use(
    pg_database_url: str,
) -> None:
    database, admin = Database(pg_database_url, pool_size=1), Database(pg_database_url)
    try:
        pooled = await _backend_pid(database)
        async with admin.session() as session:
            # What a server restart or an idle-session timeout does to a pooled connection.
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled})
            await session.commit()

        async def server_gone() -> bool:
            async with admin.session() as session:
                rows = await session.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pooled}
                )
                left: int = rows.scalar_one()
                return left == 0

        await eventually(server_gone)
        # With no ping before checkout, this statement runs on a fresh connection, not the dead one.
        assert await _backend_pid(database) != pooled
    finally:
        await database.dispose()
        await admin.dispose()
