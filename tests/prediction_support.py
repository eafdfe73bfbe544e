"""The prediction service under test in this process: its app, a client with a reader key,
and feature rows to score."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from marketsense.common.app import create_app
from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.runtime import Runtime
from marketsense.prediction.app import create_component
from marketsense.prediction.config import PredictionSettings
from tests.conftest import TEST_AS_OF
from tests.model_registry_rows import new_api_key

DAY = TEST_AS_OF
SERVED = ("test-predictor", "5")
"""The local predictor these tests serve: (name, version)."""
MAX_ROWS = 100
"""Most rows one request may score in these tests."""


def prediction_app(tmp_path: Path, **overrides: Any) -> FastAPI:
    """The prediction app serving the predictor in `tmp_path / "local"`, on the embedded default."""
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "predictor_model": f"unregistered-{uuid.uuid4().hex[:8]}",
        "predictor_path": tmp_path / "local",
        "latest_cache_seconds": 0,
        "api_key_cache_seconds": 0,
        "predict_max_rows": MAX_ROWS,
        "model_poll_seconds": 3600,
    } | overrides
    settings = PredictionSettings.model_validate(values)
    runtime = Runtime(settings, service="prediction")
    return create_app(runtime, [create_component(runtime, settings)], title="test prediction")


class Api:
    """A client of the app under test, with a reader key, and the app's runtime."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, key: str):
        self.app, self.client, self.key = app, client, key
        self.runtime: Runtime = app.state.runtime

    async def get(self, url: str, **params: Any) -> httpx.Response:
        """GET with the reader key."""
        return await self.client.get(url, params=params, headers={"X-API-Key": self.key})

    async def predict(self, rows: list[dict[str, Any]]) -> httpx.Response:
        """POST /v1/predict with the reader key."""
        return await self.client.post(
            "/v1/predict", json={"rows": rows}, headers={"X-API-Key": self.key}
        )


async def serve(app: FastAPI) -> AsyncIterator[Api]:
    """The app started, and a client of it holding a reader key."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield Api(app, client, await new_api_key(app.state.runtime.database))


def feature_row(symbol: str = "AAPL", **features: Any) -> dict[str, Any]:
    """A row of every feature at 0.1 but those given, for the test day."""
    values: dict[str, Any] = dict.fromkeys(FEATURE_COLUMNS, 0.1)
    return {"symbol": symbol, "as_of": DAY.isoformat(), "features": values | features}
