"""Fixtures shared by the behaviour suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.db.engine import Database
from tests.orchestrator_support import Orchestra, orchestrator_settings, serve_orchestrator


@pytest.fixture
async def orchestra(
    tmp_path: Path, database: Database, database_url: str
) -> AsyncIterator[Orchestra]:
    """An orchestrator on an empty database of each kind (suites needing other settings
    define their own)."""
    async with serve_orchestrator(orchestrator_settings(tmp_path, database_url)) as served:
        yield served
