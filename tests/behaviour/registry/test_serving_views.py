"""`GET /v1/models/{name}/serving` answers which version each running replica serves, against
production; a move of production warns when no running replica serves the model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from marketsense.common.db.models import ModelServing
from marketsense.common.runtime import Runtime
from tests.registry_support import Registry, with_versions

NAME = "baseline-predictor"


async def _report(runtime: Runtime, replica: str, version: str, *, age: float = 5.0) -> None:
    async with runtime.transaction() as session:
        session.add(
            ModelServing(
                replica=replica,
                model_name=NAME,
                service="prediction",
                version=version,
                variant="fp32",
                source="registry",
                reported_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age),
            )
        )


async def test_the_view_lists_fresh_replicas_by_service_and_whether_they_serve_production(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, NAME, 0.6, 0.7)
    assert (await registry.promote(NAME, 1)).status_code == 200
    assert (await registry.promote(NAME, 2)).status_code == 200
    await _report(registry.runtime, "p-a:1", "2")
    await _report(registry.runtime, "p-b:1", "1")
    await _report(registry.runtime, "p-c:1", "1", age=3600)  # stopped an hour ago

    view = await registry.api.get(f"/v1/models/{NAME}/serving", headers=registry.key("reader"))

    assert view.status_code == 200
    body = view.json()
    assert body["production_version"] == 2
    assert body["gated_variant"] == "fp32"
    assert body["answering_versions"] == ["1", "2"]
    [prediction] = body["services"]
    assert prediction["service"] == "prediction"
    assert [
        (r["replica"], r["version"], r["serves_production"], r["serves_gated_variant"])
        for r in prediction["replicas"]
    ] == [("p-a:1", "2", True, True), ("p-b:1", "1", False, True)]


async def test_the_view_of_an_unknown_model_is_404_naming_it(registry: Registry) -> None:
    view = await registry.api.get("/v1/models/no-such/serving", headers=registry.key("reader"))

    assert view.status_code == 404
    assert "no-such" in view.json()["detail"]


async def test_a_production_move_warns_while_no_running_replica_serves_the_model(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, NAME, 0.6, 0.7)

    unserved = await registry.promote(NAME, 1)
    await _report(registry.runtime, "p-a:1", "1")
    served = await registry.promote(NAME, 2)

    assert unserved.status_code == 200
    (warning,) = unserved.json()["warnings"]
    assert f"no running service reported serving {NAME}" in warning
    assert "MARKETSENSE_PREDICTOR_MODEL" in warning
    assert served.status_code == 200
    assert served.json()["warnings"] == []
    assert served.json()["to_version"] == 2
