"""Database URLs as operators hand them out are read with the async driver."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from marketsense.common.settings import CommonSettings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://app:pw@db-rw.ns:5432/app", "postgresql+asyncpg://app:pw@db-rw.ns:5432/app"),
        ("postgres://app:pw@db:5432/app", "postgresql+asyncpg://app:pw@db:5432/app"),
        ("postgresql+asyncpg://a@db/x", "postgresql+asyncpg://a@db/x"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
    ],
)
def test_libpq_uris_get_the_asyncpg_driver(given: str, used: str) -> None:
    assert CommonSettings(database_url=SecretStr(given)).resolved_database_url() == used
