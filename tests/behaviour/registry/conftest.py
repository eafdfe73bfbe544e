"""The registry app in this process, for the registry suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.db.engine import Database
from marketsense.common.store import ObjectStore
from tests.registry_support import Registry, registry_settings, running_registry


@pytest.fixture
async def registry(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Registry]:
    """The registry app on the test's database and object store."""
    settings = registry_settings(
        home=tmp_path / "home", database_url=database_url, store_url=store.base_uri
    )
    async with running_registry(database=database, settings=settings) as running:
        yield running
