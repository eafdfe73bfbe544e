"""The prediction API under the shared request guard: a request without a key is 401 before its
symbol, query or body is looked at, and `POST /v1/predict` takes `predict_max_rows` rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketsense.common.app import create_app
from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.runtime import Runtime
from marketsense.prediction.app import create_component
from marketsense.prediction.config import PredictionSettings
from tests.artifacts import small_predictor
from tests.conftest import TEST_AS_OF
from tests.model_registry_rows import new_api_key

MAX_ROWS = 100
ROW = {
    "symbol": "AAPL",
    "as_of": TEST_AS_OF.isoformat(),
    "features": dict.fromkeys(FEATURE_COLUMNS, 0.1),
}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A client of the prediction app serving a local predictor, and a reader key."""
    small_predictor(tmp_path / "local", seed=11, name="test-predictor", version="5")
    settings = PredictionSettings(
        home=tmp_path / "home",
        predictor_model=f"unregistered-{uuid.uuid4().hex[:8]}",
        predictor_path=tmp_path / "local",
        predict_max_rows=MAX_ROWS,
        model_poll_seconds=3600,
    )
    runtime = Runtime(settings, service="prediction")
    app = create_app(runtime, [create_component(runtime, settings)], title="test prediction")
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as api,
    ):
        yield api, await new_api_key(runtime.database)


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        pytest.param("GET", "/v1/predictions/not%20a%20symbol/latest", None, id="bad-symbol"),
        pytest.param("GET", "/v1/predictions?cursor=%C2%B2&limit=0", None, id="bad-query"),
        pytest.param("POST", "/v1/predict", b'{"rows": [{"symbol": }]}', id="unreadable-body"),
        pytest.param("POST", "/v1/predict", b'{"rows": []}', id="invalid-body"),
    ],
)
async def test_a_request_without_a_key_is_401_before_its_path_or_body_is_validated(
    client: tuple[httpx.AsyncClient, str], method: str, url: str, body: bytes | None
) -> None:
    api, _ = client

    response = await api.request(
        method, url, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 401
    assert response.json() == {"detail": "missing API key: send it in the X-API-Key header"}


async def test_predict_takes_a_body_of_max_rows_rows_and_refuses_a_larger_one(
    client: tuple[httpx.AsyncClient, str],
) -> None:
    api, key = client
    headers: dict[str, Any] = {"X-API-Key": key, "Content-Type": "application/json"}
    full = json.dumps({"rows": [ROW] * MAX_ROWS}, indent=4).encode()
    over = b" " * (1 << 20) + full  # the limit of 100 rows is the default, 1 MiB

    taken = await api.post("/v1/predict", content=full, headers=headers)
    refused = await api.post("/v1/predict", content=over, headers=headers)

    assert taken.status_code == 200, taken.text
    assert len(taken.json()["predictions"]) == MAX_ROWS
    assert refused.status_code == 413
    assert refused.json() == {
        "detail": "the request body is over this route's limit of 1,048,576 bytes "
        "(MARKETSENSE_PREDICT_MAX_ROWS)"
    }
