"""Fixtures of the model suites: registries that check pushes, and a valid predictor to push."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.db.engine import Database
from marketsense.common.store import ObjectStore
from tests.artifacts import small_predictor
from tests.behaviour.models.pushes import checked_registry
from tests.registry_support import Registry


@pytest.fixture
async def registry(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Registry]:
    """The registry app with a 1 MiB bundle limit, a predictor and a sentiment model registered."""
    async with checked_registry(database, database_url, store, tmp_path / "home", 1) as running:
        yield running


@pytest.fixture
async def roomy_registry(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Registry]:
    """The same with the default limit, for the real sentiment model (about 150 MB)."""
    async with checked_registry(database, database_url, store, tmp_path / "home", 512) as running:
        yield running


@pytest.fixture
def predictor(tmp_path: Path) -> Path:
    """A valid predictor folder."""
    return small_predictor(tmp_path / "predictor")
