"""Fixtures of the retraining suites: the registry and the retraining worker in one app, the
worker calling the registry's API in process, as on the embedded default."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from marketsense.common.app import create_app
from marketsense.common.auth import KEY_HEADER, Role, create_key
from marketsense.common.db.engine import Database
from marketsense.common.registry_calls import InProcessTransport
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.registry.app import create_component as registry
from marketsense.registry.config import RegistrySettings
from marketsense.retraining.app import create_component as retraining
from marketsense.retraining.config import RetrainingSettings
from tests.backends import object_store_fields
from tests.behaviour.monitoring.market_runs import AlertRecorder


class WorkerSettings(RegistrySettings, RetrainingSettings):
    """The registry's and the worker's settings in one object."""


@dataclass
class Running:
    """The app's client (with an approver key), its runtime and the alerts it sent."""

    api: httpx.AsyncClient
    runtime: Runtime
    alerts: AlertRecorder


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, database: Database, store: ObjectStore
) -> WorkerSettings:
    """Settings on the test's database and store: the logistic trainer, 16 days to train."""
    return WorkerSettings.model_validate(
        {
            "home": tmp_path,
            "database_url": database_url,
            **object_store_fields(store.base_uri),
            "retraining_trainer": "logistic",
            "retraining_min_days": 16,
            "retraining_backoff_seconds": 0.01,
        }
    )


@contextlib.asynccontextmanager
async def running_worker(settings: WorkerSettings) -> AsyncIterator[Running]:
    """The registry and the worker in one app, started."""
    runtime = Runtime(settings, service="retraining", relay_all=True)
    transport, alerts = InProcessTransport(), AlertRecorder()
    components = [
        registry(runtime, settings),
        retraining(runtime, settings, notifier=alerts, registry_transport=transport),
    ]
    app = create_app(runtime, components, title="retraining under test")
    transport.app = app
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        async with runtime.transaction() as session:
            transport.api_key = await create_key(session, name="in-process", role=Role.APPROVER)
        api.headers[KEY_HEADER] = transport.api_key
        yield Running(api=api, runtime=runtime, alerts=alerts)


@pytest.fixture
async def worker(settings: WorkerSettings) -> AsyncIterator[Running]:
    """The registry and the worker, started on the test's backends."""
    async with running_worker(settings) as running:
        yield running
