"""Fixtures of the monitoring behaviour suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.db.engine import Database
from marketsense.common.runtime import Runtime
from marketsense.monitoring.config import MonitoringSettings


@pytest.fixture
async def runtime(database_url: str, database: Database, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A monitoring runtime on the test's (migrated, empty) database."""
    settings = MonitoringSettings(home=tmp_path, database_url=database_url)
    made = Runtime(settings, service="monitoring")
    await made.start_storage()
    yield made
    await made.stop()
