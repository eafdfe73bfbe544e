"""The prediction service's app: ready only once a predictor is loaded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.runtime import Runtime
from tests import live_support
from tests.artifacts import small_predictor
from tests.conftest import eventually
from tests.model_registry_rows import new_api_key, promote, publish, register_version


@pytest.fixture
async def api() -> AsyncIterator[live_support.Clients]:
    """Clients for apps under test, closed afterwards."""
    async with live_support.app_clients() as clients:
        yield clients


async def test_readiness_is_false_until_a_production_version_is_promoted(
    tmp_path: Path, api: live_support.Clients
) -> None:
    name = live_support.unique("predictor")
    app = live_support.prediction_app(tmp_path, name)
    runtime: Runtime = app.state.runtime
    async with app.router.lifespan_context(app):
        client = api(app)
        key = await new_api_key(runtime.database)
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["predictor"] is False
        latest = await client.get("/v1/predictions/AAA/latest", headers={"X-API-Key": key})
        assert latest.status_code == 503
        assert "no predictor is loaded" in latest.json()["detail"]

        await publish(runtime, name=name, folder=small_predictor(tmp_path / "v1", seed=1))

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=10)
        assert live_support.served("prediction", name, "1", variant="fp32") == 1
        assert not_ready.json()["serving"] == []
        assert (await client.get("/readyz")).json()["serving"] == [
            {
                "service": "prediction",
                "model": name,
                "version": "1",
                "variant": "fp32",
                "source": "registry",
            }
        ]


async def test_readiness_lists_the_shadow_scored_challenger_beside_production(
    tmp_path: Path, api: live_support.Clients
) -> None:
    name = live_support.unique("predictor")
    app = live_support.prediction_app(tmp_path, name)
    runtime: Runtime = app.state.runtime
    await runtime.start_storage()
    await publish(runtime, name=name, folder=small_predictor(tmp_path / "v1", seed=1))
    challenger = await register_version(
        runtime, name=name, kind="predictor", folder=small_predictor(tmp_path / "v2", seed=2)
    )
    await promote(runtime, name=name, version=challenger, alias="challenger")
    async with app.router.lifespan_context(app):
        ready = await api(app).get("/readyz")
        # The served-model gauge names what answers requests: production alone.
        gauges = [
            live_support.served("prediction", name, version, variant="fp32") for version in "12"
        ]

    assert gauges == [1, None]
    assert ready.status_code == 200
    production = {"service": "prediction", "model": name, "variant": "fp32", "source": "registry"}
    assert ready.json()["serving"] == [
        production | {"version": "1"},
        production | {"version": "2", "alias": "challenger"},
    ]
