"""The orchestrator alone, alerting to a webhook, for the dead-letter suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer

from marketsense.common.app import create_app
from marketsense.common.auth import Role
from marketsense.common.db.engine import Database
from marketsense.common.runtime import Runtime
from marketsense.orchestrator.app import create_component as orchestrator
from tests.dead_letters_support import HOOK_PATH, Pipeline
from tests.model_registry_rows import new_api_key
from tests.orchestrator_support import orchestrator_settings


@pytest.fixture
async def orchestrator_only(
    database: Database, prefix: str, tmp_path: Path, httpserver: HTTPServer
) -> AsyncIterator[Pipeline]:
    """The orchestrator alone on an emptied database of each kind, alerting to a webhook."""
    httpserver.expect_request(HOOK_PATH, method="POST").respond_with_data("ok")
    settings = orchestrator_settings(
        tmp_path / "home",
        database.url,
        topic_prefix=prefix,
        alert_webhook_url=httpserver.url_for(HOOK_PATH),
    )
    runtime = Runtime(settings, service="orchestrator")
    app = create_app(runtime, [orchestrator(runtime, settings)], title="test")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as reader,
        httpx.AsyncClient(transport=transport, base_url="http://t") as publisher,
    ):
        reader.headers["X-API-Key"] = await new_api_key(runtime.database)
        publisher.headers["X-API-Key"] = await new_api_key(runtime.database, role=Role.PUBLISHER)
        yield Pipeline(app, runtime, reader, publisher, "")
