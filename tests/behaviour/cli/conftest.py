"""An orchestrator served on loopback for the `run` and `dlq` commands to talk to, and a
registry for the `keys` and `models` commands."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from marketsense.common.runtime import Runtime
from marketsense.orchestrator.app import build_app
from marketsense.orchestrator.config import OrchestratorSettings
from tests.orchestrator_support import orchestrator_settings, served_on_loopback
from tests.served_registry_support import (
    BACKENDS,
    Keys,
    ServedRegistry,
    made_keys,
    served_registry,
)


@dataclass(frozen=True)
class Served:
    """An orchestrator on loopback, its settings, and a runtime (not started) on its database."""

    url: str
    settings: OrchestratorSettings
    runtime: Runtime


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The real orchestrator app under uvicorn in a thread, on a free loopback port."""
    settings = orchestrator_settings(
        tmp_path / "home", f"sqlite+aiosqlite:///{tmp_path / 'orchestrator.db'}"
    )
    runtime = Runtime(settings, service="orchestrator")
    try:
        with served_on_loopback(build_app(settings)) as url:
            yield Served(url, settings, runtime)
    finally:
        await runtime.database.dispose()


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedRegistry]:
    """The real registry app under uvicorn in a thread, on a free loopback port."""
    with served_registry(request, tmp_path) as served:
        yield served


@pytest.fixture
def keys(registry: ServedRegistry) -> Keys:
    """A key of each role, under names no other test uses."""
    return made_keys(registry)
