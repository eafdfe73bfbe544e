"""Every service's OpenAPI fuzzed in-process on the embedded backends, in every phase and with every
key role and none: no 5xx, every answer as documented, invalid input refused, and no route but the
probes and metrics open without a key, whatever else is wrong with the request."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from schemathesis.engine import StopReason

from marketsense.common.app import Component, create_app
from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.db.migrate import upgrade
from marketsense.common.runtime import Runtime
from marketsense.common.settings import CommonSettings
from tests.fuzz.fuzzing import MAX_SECONDS, SEED, load_schema, run, stop_apps
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
    from marketsense.retraining.app import create_component as retraining
    from marketsense.retraining.config import RetrainingSettings

    return {
        "ingestion": Service(IngestionSettings, ingestion),
        "processing": Service(ProcessingSettings, processing),
        "prediction": Service(PredictionSettings, prediction),
        "registry": Service(RegistrySettings, registry),
        "monitoring": Service(MonitoringSettings, monitoring),
        "orchestrator": Service(OrchestratorSettings, orchestrator),
        "retraining": Service(RetrainingSettings, retraining),
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
    if request.param == "retraining":
        # Its worker calls the registry only for a retrain request, which no route makes.
        models = {"registry_url": "http://127.0.0.1:9"}
    settings = service.settings(home=tmp_path / "home", **models)
    runtime = Runtime(settings, service=request.param)
    built = create_app(
        runtime, [service.component(runtime, settings)], title=f"marketsense {request.param}"
    )
    yield built
    stop_apps()


ROLES = [*Role, None]
"""Every key role, and no key at all."""


@pytest.fixture(params=ROLES, ids=lambda role: f"key-{role}" if role else "no-key")
async def api_key(request: pytest.FixtureRequest, app: FastAPI) -> AsyncIterator[str | None]:
    """A key of the role in the app's database (None: requests carry no key)."""
    role: Role | None = request.param
    runtime: Runtime = app.state.runtime
    database = Database(runtime.settings.resolved_database_url())
    await upgrade(database)
    try:
        yield None if role is None else await new_api_key(database, role=role)
    finally:
        await database.dispose()


def test_every_phase_gets_no_server_error_and_only_documented_answers(
    app: FastAPI, api_key: str | None
) -> None:
    started = time.monotonic()
    outcome = run(load_schema(app, api_key=api_key))
    took = time.monotonic() - started
    summary = (
        f"seed {SEED} (set MARKETSENSE_FUZZ_SEED to replay), {took:.1f} s, "
        f"stopped: {outcome.stop_reason}, requests by phase: {dict(outcome.cases)}, "
        f"phases skipped: {outcome.skipped}"
    )
    print(summary)
    assert outcome.failures == {}, summary + "\n\n" + "\n\n".join(outcome.report())
    assert outcome.stop_reason is StopReason.COMPLETED, summary
    assert took < MAX_SECONDS, summary
    # Stateful testing needs links between operations; services serving only probes have none.
    assert set(outcome.skipped) <= {"stateful"}, summary
    assert "stateful" in outcome.skipped or outcome.cases["stateful"] > 0, summary
