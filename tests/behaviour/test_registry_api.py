"""The registry API: pushing versions, downloading them, aliases with the production gate,
rollback, history, point-in-time lookups, the audit log, events and roles."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.common.app import create_app
from marketsense.common.db.engine import Database
from marketsense.common.runtime import Runtime
from marketsense.common.store import ObjectStore
from marketsense.registry.app import create_component
from marketsense.registry.config import RegistrySettings
from tests.artifacts import small_predictor
from tests.conftest import eventually
from tests.registry_support import (
    Registry,
    registry_settings,
    running_registry,
    sha256_of,
)

MODEL = "baseline-predictor"


@pytest.fixture
async def registry(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Registry]:
    """The registry app on the test's database and object store."""
    settings = registry_settings(
        home=tmp_path / "home", database_url=database_url, store_url=store.base_uri
    )
    async with running_registry(database=database, settings=settings) as running:
        yield running


async def _with_versions(registry: Registry, tmp_path: Path, *aucs: float) -> None:
    """Register MODEL and push one version per AUC (versions 1, 2, …), all on one window."""
    assert (await registry.create_model(MODEL)).status_code == 201
    for number, auc in enumerate(aucs, start=1):
        pushed = await registry.push(MODEL, small_predictor(tmp_path / f"v{number}", auc=auc))
        assert pushed.status_code == 201, pushed.text
        assert pushed.json()["version"] == number


async def test_push_stores_the_files_with_their_checksums_and_renames_the_manifest(
    registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    folder = small_predictor(tmp_path / "artifact", name="whatever", version="9.9.9", auc=0.61)
    assert (await registry.create_model(MODEL)).status_code == 201

    pushed = await registry.push(MODEL, folder)

    assert pushed.status_code == 201, pushed.text
    version = pushed.json()
    assert version["model_name"] == MODEL
    assert version["version"] == 1
    assert version["kind"] == "predictor"
    assert version["manifest"]["name"] == MODEL
    assert version["manifest"]["version"] == "1"
    assert version["metrics"]["holdout_auc"] == pytest.approx(0.61)
    assert version["evaluation_window"] == "simulated 2026-06-01..2026-09-30"
    assert version["created_by"] == "publisher-key"
    assert version["aliases"] == []
    files = {f["name"]: f for f in version["files"]}
    assert set(files) == {"model.onnx", "manifest.json"}
    assert files["model.onnx"]["sha256"] == sha256_of(folder / "model.onnx")
    assert files["model.onnx"]["size"] == (folder / "model.onnx").stat().st_size
    stored_model = await store.read_key(f"models/{MODEL}/1/model.onnx")
    assert stored_model == (folder / "model.onnx").read_bytes()
    stored_manifest = json.loads(await store.read_key(f"models/{MODEL}/1/manifest.json"))
    assert stored_manifest == version["manifest"]
    local_manifest = json.loads((folder / "manifest.json").read_text())
    assert stored_manifest["features"] == local_manifest["features"]

    again = await registry.push(MODEL, folder)
    assert again.status_code == 201, again.text
    assert again.json()["version"] == 2
    assert again.json()["manifest"]["version"] == "2"
    listed = await registry.api.get(f"/v1/models/{MODEL}/versions", headers=registry.key("reader"))
    assert [v["version"] for v in listed.json()] == [2, 1]
    model = (await registry.api.get(f"/v1/models/{MODEL}", headers=registry.key("reader"))).json()
    assert model["latest_version"] == 2
    assert model["aliases"] == {}


async def test_concurrent_pushes_get_consecutive_version_numbers(
    registry: Registry, tmp_path: Path
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201
    folders = [small_predictor(tmp_path / f"p{i}", auc=0.5 + i / 100) for i in range(5)]

    responses = await asyncio.gather(*(registry.push(MODEL, f) for f in folders))

    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == [1, 2, 3, 4, 5]
    by_number = {r.json()["version"]: r.json()["metrics"]["holdout_auc"] for r in responses}
    for number, auc in by_number.items():
        stored = await registry.api.get(
            f"/v1/models/{MODEL}/versions/{number}", headers=registry.key("reader")
        )
        assert stored.json()["metrics"]["holdout_auc"] == pytest.approx(auc)


async def test_download_returns_the_uploaded_bytes_with_their_checksum(
    registry: Registry, tmp_path: Path
) -> None:
    folder = small_predictor(tmp_path / "artifact")
    await _with_versions(registry, tmp_path, 0.6)
    pushed = await registry.push(MODEL, folder)
    number = pushed.json()["version"]
    files = {f["name"]: f for f in pushed.json()["files"]}
    base = f"/v1/models/{MODEL}/versions/{number}/files"

    onnx = await registry.api.get(f"{base}/model.onnx", headers=registry.key("reader"))
    manifest = await registry.api.get(f"{base}/manifest.json", headers=registry.key("reader"))
    missing = await registry.api.get(f"{base}/tokenizer.json", headers=registry.key("reader"))

    assert onnx.status_code == 200
    assert onnx.content == (folder / "model.onnx").read_bytes()
    assert onnx.headers["content-type"] == "application/octet-stream"
    assert onnx.headers["x-checksum-sha256"] == files["model.onnx"]["sha256"]
    assert json.loads(manifest.content) == pushed.json()["manifest"]
    assert manifest.headers["x-checksum-sha256"] == files["manifest.json"]["sha256"]
    assert missing.status_code == 404
    assert "tokenizer.json" in missing.json()["detail"]


async def test_models_are_listed_and_unknown_names_are_not_found(registry: Registry) -> None:
    assert (await registry.create_model("b-sentiment", kind="sentiment")).status_code == 201
    assert (await registry.create_model("a-predictor")).status_code == 201
    duplicate = await registry.create_model("a-predictor")
    bad_name = await registry.create_model("Not Valid")

    listed = await registry.api.get("/v1/models", headers=registry.key("reader"))
    unknown = await registry.api.get("/v1/models/nope", headers=registry.key("reader"))
    unknown_versions = await registry.api.get(
        "/v1/models/nope/versions", headers=registry.key("reader")
    )

    assert duplicate.status_code == 409
    assert "a-predictor" in duplicate.json()["detail"]
    assert bad_name.status_code == 422
    assert [(m["name"], m["kind"], m["latest_version"]) for m in listed.json()] == [
        ("a-predictor", "predictor", None),
        ("b-sentiment", "sentiment", None),
    ]
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "no model named 'nope'"
    assert unknown_versions.status_code == 404


async def test_promotion_points_production_at_the_version_and_repeating_it_conflicts(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.6)

    unset = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production", headers=registry.key("reader")
    )
    promoted = await registry.promote(MODEL, 1, reason="first model")
    again = await registry.promote(MODEL, 1)
    unknown = await registry.promote(MODEL, 7)

    assert unset.status_code == 404
    assert promoted.status_code == 200, promoted.text
    change = promoted.json()
    assert change["action"] == "promote"
    assert (change["from_version"], change["to_version"]) == (None, 1)
    assert change["actor"] == "approver-key"
    assert change["reason"] == "first model"
    assert change["forced"] is False
    at = dt.datetime.fromisoformat(change["at"])
    assert at.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - at) < dt.timedelta(minutes=1)
    holder = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production", headers=registry.key("reader")
    )
    assert holder.json()["version"] == 1
    assert holder.json()["aliases"] == ["production"]
    model = await registry.api.get(f"/v1/models/{MODEL}", headers=registry.key("reader"))
    assert model.json()["aliases"] == {"production": 1}
    assert again.status_code == 409
    assert "already points at version 1" in again.json()["detail"]
    assert unknown.status_code == 404
    assert "no version 7" in unknown.json()["detail"]


async def test_production_gate_refuses_a_worse_metric_and_names_both_numbers(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.62, 0.58)
    assert (await registry.promote(MODEL, 1)).status_code == 200

    refused = await registry.promote(MODEL, 2)

    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "holdout_auc 0.5800" in detail
    assert "0.6200" in detail
    assert "force" in detail
    still = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production", headers=registry.key("reader")
    )
    assert still.json()["version"] == 1


async def test_production_gate_refuses_a_version_measured_on_another_window(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.6)
    other = small_predictor(tmp_path / "other", auc=0.9, window="simulated 2025-01-01..2025-03-31")
    assert (await registry.push(MODEL, other)).json()["version"] == 2
    assert (await registry.promote(MODEL, 1)).status_code == 200

    refused = await registry.promote(MODEL, 2)

    assert refused.status_code == 409
    assert "simulated 2025-01-01..2025-03-31" in refused.json()["detail"]
    assert "simulated 2026-06-01..2026-09-30" in refused.json()["detail"]


async def test_production_gate_lets_an_equal_or_better_version_through(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.6, 0.6, 0.65)
    assert (await registry.promote(MODEL, 1)).status_code == 200

    equal = await registry.promote(MODEL, 2)
    better = await registry.promote(MODEL, 3)

    assert equal.status_code == 200, equal.text
    assert better.status_code == 200, better.text
    assert (better.json()["from_version"], better.json()["to_version"]) == (2, 3)


async def test_forcing_past_the_gate_needs_a_reason_and_is_audited_as_forced(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.62, 0.5)
    assert (await registry.promote(MODEL, 1)).status_code == 200

    without_reason = await registry.promote(MODEL, 2, force=True, reason="  ")
    forced = await registry.promote(MODEL, 2, force=True, reason="v1 breaks on halted symbols")

    assert without_reason.status_code == 422
    assert "reason" in without_reason.json()["detail"]
    assert forced.status_code == 200, forced.text
    assert forced.json()["forced"] is True
    assert forced.json()["reason"] == "v1 breaks on halted symbols"
    history = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production/history", headers=registry.key("reader")
    )
    assert [(c["to_version"], c["forced"]) for c in history.json()] == [(2, True), (1, False)]


async def test_rollback_returns_production_to_the_version_before_the_last_change(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.6, 0.65)
    rollback = f"/v1/models/{MODEL}/rollback"
    headers = registry.key("approver")

    never_set = await registry.api.post(rollback, json={"reason": "x"}, headers=headers)
    assert (await registry.promote(MODEL, 1)).status_code == 200
    only_one = await registry.api.post(rollback, json={"reason": "x"}, headers=headers)
    assert (await registry.promote(MODEL, 2)).status_code == 200
    rolled = await registry.api.post(rollback, json={"reason": "v2 drifts"}, headers=headers)
    empty_reason = await registry.api.post(rollback, json={"reason": ""}, headers=headers)

    assert never_set.status_code == 409
    assert only_one.status_code == 409
    assert "no earlier version" in only_one.json()["detail"]
    assert rolled.status_code == 200, rolled.text
    change = rolled.json()
    assert change["action"] == "rollback"
    assert (change["from_version"], change["to_version"]) == (2, 1)
    assert change["reason"] == "v2 drifts"
    holder = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production", headers=registry.key("reader")
    )
    assert holder.json()["version"] == 1
    assert empty_reason.status_code == 422


async def test_history_and_point_in_time_lookups_follow_every_move(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.6, 0.65, 0.7)
    before_any = dt.datetime.now(dt.UTC)
    times: list[dt.datetime] = []
    for number in (1, 2, 3):
        moved = await registry.promote(MODEL, number)
        assert moved.status_code == 200, moved.text
        times.append(dt.datetime.fromisoformat(moved.json()["at"]))
    rolled = await registry.api.post(
        f"/v1/models/{MODEL}/rollback",
        json={"reason": "v3 drifts"},
        headers=registry.key("approver"),
    )
    times.append(dt.datetime.fromisoformat(rolled.json()["at"]))
    assert times == sorted(times)

    async def version_at(time: dt.datetime) -> int | None:
        answer = await registry.api.get(
            f"/v1/models/{MODEL}/aliases/production/at",
            params={"time": time.isoformat()},
            headers=registry.key("reader"),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_name"] == MODEL
        version: int | None = answer.json()["version"]
        return version

    tick = dt.timedelta(microseconds=1)
    assert await version_at(before_any - dt.timedelta(seconds=1)) is None
    assert await version_at(times[0]) == 1
    assert await version_at(times[1] - tick) == 1
    assert await version_at(times[1]) == 2
    assert await version_at(times[2] - tick) == 2
    assert await version_at(times[2]) == 3
    assert await version_at(times[3]) == 2
    assert await version_at(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)) == 2
    # The same instant written in another timezone names the same version.
    berlin = dt.timezone(dt.timedelta(hours=2))
    assert await version_at(times[1].astimezone(berlin)) == 2
    assert await version_at((times[1] - tick).astimezone(berlin)) == 1

    history = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production/history", headers=registry.key("reader")
    )
    moves = [(c["action"], c["from_version"], c["to_version"]) for c in history.json()]
    assert moves == [
        ("rollback", 3, 2),
        ("promote", 2, 3),
        ("promote", 1, 2),
        ("promote", None, 1),
    ]
    naive = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production/at",
        params={"time": "2026-11-25T14:30:00"},
        headers=registry.key("reader"),
    )
    assert naive.status_code == 422
    assert "timezone" in naive.json()["detail"]


async def test_audit_pages_cover_every_change_once_newest_first(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.6, 0.6, 0.6)
    assert (await registry.create_model("other-model")).status_code == 201
    assert (await registry.push("other-model", tmp_path / "v1")).status_code == 201
    for number in (1, 2, 3, 1, 2, 3, 1):
        assert (await registry.promote(MODEL, number, alias="staging")).status_code == 200
    assert (await registry.promote("other-model", 1, alias="staging")).status_code == 200

    async def pages(params: dict[str, str]) -> list[list[dict[str, object]]]:
        found: list[list[dict[str, object]]] = []
        cursor: str | None = None
        while True:
            query = params | ({"cursor": cursor} if cursor else {})
            page = await registry.api.get("/v1/audit", params=query, headers=registry.key("reader"))
            assert page.status_code == 200, page.text
            found.append(page.json()["items"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return found

    everything = await pages({"limit": "3"})
    only_model = await pages({"limit": "2", "model": MODEL})

    assert [len(p) for p in everything] == [3, 3, 2]
    ids = [int(str(e["id"])) for page in everything for e in page]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 8
    assert everything[0][0]["model_name"] == "other-model"
    flat = [e for page in only_model for e in page]
    assert [len(p) for p in only_model] == [2, 2, 2, 1]
    assert {e["model_name"] for e in flat} == {MODEL}
    assert [e["to_version"] for e in flat] == [1, 3, 2, 1, 3, 2, 1]
    bad = await registry.api.get(
        "/v1/audit", params={"cursor": "abc"}, headers=registry.key("reader")
    )
    assert bad.status_code == 422
    assert "cursor" in bad.json()["detail"]


async def test_concurrent_alias_moves_keep_one_row_and_a_complete_audit_chain(
    registry: Registry, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.6, 0.6, 0.6, 0.6)

    moves = await asyncio.gather(
        *(registry.promote(MODEL, n, alias="staging") for n in (1, 2, 3, 4, 1, 2, 3, 4))
    )

    succeeded = [m for m in moves if m.status_code == 200]
    assert all(m.status_code in (200, 409) for m in moves), [m.text for m in moves]
    history = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/staging/history", headers=registry.key("reader")
    )
    chain = list(reversed(history.json()))
    assert len(chain) == len(succeeded)
    assert chain[0]["from_version"] is None
    for before, after in itertools.pairwise(chain):
        assert after["from_version"] == before["to_version"]
    model = await registry.api.get(f"/v1/models/{MODEL}", headers=registry.key("reader"))
    assert model.json()["aliases"] == {"staging": chain[-1]["to_version"]}


async def test_every_move_publishes_model_promoted_with_the_manifest_reference(
    registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    await _with_versions(registry, tmp_path, 0.6, 0.65)
    versions = await registry.api.get(
        f"/v1/models/{MODEL}/versions", headers=registry.key("reader")
    )
    manifest_sha = {
        v["version"]: next(f["sha256"] for f in v["files"] if f["name"] == "manifest.json")
        for v in versions.json()
    }

    assert (await registry.promote(MODEL, 1)).status_code == 200
    assert (await registry.promote(MODEL, 2)).status_code == 200
    assert (
        await registry.promote(MODEL, 1, alias="staging", holder="publisher")
    ).status_code == 200
    assert (await registry.promote(MODEL, 2)).status_code == 409  # refused: no event

    await eventually(lambda: len(registry.promoted) >= 3)
    seen = [(e.alias, e.version, e.previous_version) for e in registry.promoted]
    assert sorted(seen, key=str) == sorted(
        [("production", "1", None), ("production", "2", "1"), ("staging", "1", None)], key=str
    )
    for event in registry.promoted:
        assert event.model_name == MODEL
        assert event.manifest.sha256 == manifest_sha[int(event.version)]
        manifest = json.loads(await store.get(event.manifest))
        assert manifest["version"] == event.version


async def test_requests_without_a_key_or_with_a_revoked_one_are_unauthorised(
    registry: Registry,
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201

    no_key = await registry.api.get("/v1/models")
    revoked = await registry.api.get("/v1/models", headers=registry.key("revoked"))
    wrong = await registry.api.get("/v1/models", headers={"X-API-Key": "msk_" + "x" * 40})
    revoked_promote = await registry.promote(MODEL, 1, holder="revoked")

    assert no_key.status_code == 401
    assert "X-API-Key" in no_key.json()["detail"]
    assert revoked.status_code == 401
    assert wrong.status_code == 401
    assert revoked_promote.status_code == 401


async def test_roles_bound_what_each_key_may_do(registry: Registry, tmp_path: Path) -> None:
    folder = small_predictor(tmp_path / "artifact")

    reader_creates = await registry.create_model(MODEL, holder="reader")
    assert (await registry.create_model(MODEL)).status_code == 201
    reader_pushes = await registry.push(MODEL, folder, holder="reader")
    assert (await registry.push(MODEL, folder)).status_code == 201
    assert (await registry.push(MODEL, folder)).status_code == 201
    publisher_production = await registry.promote(MODEL, 1, holder="publisher")
    publisher_staging = await registry.promote(MODEL, 1, alias="staging", holder="publisher")
    reader_staging = await registry.promote(MODEL, 2, alias="staging", holder="reader")
    approver_production = await registry.promote(MODEL, 1, holder="approver")
    assert (await registry.promote(MODEL, 2, holder="approver")).status_code == 200
    publisher_rollback = await registry.api.post(
        f"/v1/models/{MODEL}/rollback", json={"reason": "x"}, headers=registry.key("publisher")
    )
    approver_rollback = await registry.api.post(
        f"/v1/models/{MODEL}/rollback", json={"reason": "x"}, headers=registry.key("approver")
    )
    approver_creates = await registry.create_model("approved-model", holder="approver")
    approver_pushes = await registry.push("approved-model", folder, holder="approver")
    reader_reads = await registry.api.get(
        f"/v1/models/{MODEL}/versions/1/files/model.onnx", headers=registry.key("reader")
    )

    assert reader_creates.status_code == 403
    assert "publisher" in reader_creates.json()["detail"]
    assert reader_pushes.status_code == 403
    assert publisher_production.status_code == 403
    assert "approver" in publisher_production.json()["detail"]
    assert publisher_staging.status_code == 200
    assert reader_staging.status_code == 403
    assert approver_production.status_code == 200
    assert publisher_rollback.status_code == 403
    assert approver_rollback.status_code == 200
    assert approver_creates.status_code == 201
    assert approver_pushes.status_code == 201
    assert reader_reads.status_code == 200
    history = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/production/history", headers=registry.key("reader")
    )
    assert [c["to_version"] for c in history.json()] == [1, 2, 1]


def test_every_route_is_documented_with_a_summary_tags_and_its_errors(tmp_path: Path) -> None:
    settings = RegistrySettings(home=tmp_path, log_json=False)
    runtime = Runtime(settings, service="registry")
    spec = create_app(runtime, [create_component(runtime, settings)], title="registry").openapi()

    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]
    assert len(operations) == 13
    error_schemas = [
        {"$ref": "#/components/schemas/ErrorRead"},
        {"$ref": "#/components/schemas/HTTPValidationError"},
    ]
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("tags"), where
        assert {"401", "403"} <= set(op["responses"]), where
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema in error_schemas, (where, code)
    push = spec["paths"]["/v1/models/{name}/versions"]["post"]
    assert set(push["requestBody"]["content"]["multipart/form-data"]["schema"]["required"]) == {
        "manifest",
        "bundle",
    }
    assert "413" in push["responses"]
    for name, schema in spec["components"]["schemas"].items():
        if name in {"HTTPValidationError", "ValidationError"}:
            continue
        assert schema.get("examples"), f"schema {name} has no example"
