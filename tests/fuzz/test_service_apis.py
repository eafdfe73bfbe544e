"""Every service's OpenAPI fuzzed in-process on the embedded backends: no 5xx, every response as
documented, invalid input refused, and no route but the probes and metrics open without a key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from marketsense.common.app import Component, create_app
from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from tests.fuzz.fuzzing import OPEN_PATHS, fuzz, load_schema, statuses_without_key, stop_apps
from tests.model_registry_rows import new_api_key


@dataclass(frozen=True)
class Service:
    """How to build one service's component on its settings."""

    settings: Callable[..., CommonSettings]
    component: Callable[[Runtime, Any], Component]


def _services() -> dict[str, Service]:
    from marketsense.ingestion.app import create_component as ingestion
    from marketsense.ingestion.config import IngestionSettings
    from marketsense.monitoring.app import create_component as monitoring
    from marketsense.monitoring.config import MonitoringSettings
    from marketsense.orchestrator.app import create_component as orchestrator
    from marketsense.orchestrator.config import OrchestratorSettings
    from marketsense.prediction.app import create_component as prediction
    from marketsense.prediction.config import PredictionSettings
    from marketsense.processing.app import create_component as processing
    from marketsense.processing.config import ProcessingSettings
    from marketsense.registry.app import create_component as registry
    from marketsense.registry.config import RegistrySettings

    return {
        "ingestion": Service(IngestionSettings, ingestion),
        "processing": Service(ProcessingSettings, processing),
        "prediction": Service(PredictionSettings, prediction),
        "registry": Service(RegistrySettings, registry),
        "monitoring": Service(MonitoringSettings, monitoring),
        "orchestrator": Service(OrchestratorSettings, orchestrator),
    }


SERVICES = _services()


@pytest.fixture(params=sorted(SERVICES))
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FastAPI]:
    """One service on the embedded backends, serving the local models where it needs them;
    stopped after the test."""
    service = SERVICES[request.param]
    models: dict[str, object] = {}
    # Fields a service does not have are ignored by its settings class.
    if request.param == "processing":
        models = {
            "sentiment_model_path": request.getfixturevalue("sentiment_model_dir"),
            "sentiment_model": "unregistered-sentiment",
        }
    if request.param == "prediction":
        models = {
            "predictor_path": request.getfixturevalue("predictor_dir"),
            "predictor_model": "unregistered-predictor",
        }
    settings = service.settings(home=tmp_path / "home", **models)
    runtime = Runtime(settings, service=request.param)
    built = create_app(
        runtime, [service.component(runtime, settings)], title=f"marketsense {request.param}"
    )
    yield built
    stop_apps()


@pytest.fixture
async def approver_key(app: FastAPI) -> AsyncIterator[str]:
    """An approver's key (allowed everything) in the app's database."""
    runtime: Runtime = app.state.runtime
    database = Database(runtime.settings.resolved_database_url())
    await upgrade(database)
    try:
        yield await new_api_key(database, role=Role.APPROVER)
    finally:
        await database.dispose()


def test_fuzzed_requests_get_no_server_error_and_only_documented_responses(
    app: FastAPI, approver_key: str
) -> None:
    failures = fuzz(load_schema(app), api_key=approver_key)
    assert failures == [], "\n\n".join(failures)


def test_every_route_but_probes_and_metrics_refuses_requests_without_a_key(app: FastAPI) -> None:
    seen = statuses_without_key(load_schema(app))
    assert {label.split(" ", 1)[1] for label in seen} >= OPEN_PATHS
    for label, statuses in seen.items():
        if label.split(" ", 1)[1] in OPEN_PATHS:
            assert 401 not in statuses, label
        else:
            assert statuses == {401}, label
