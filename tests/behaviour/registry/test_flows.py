"""The registry's flows: pushing versions, moving aliases through the production gate, rolling
back, and announcing every move."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from pathlib import Path

import pytest

from marketsense.common.store import ObjectStore
from tests.artifacts import small_predictor
from tests.conftest import eventually
from tests.registry_support import Registry, sha256_of, with_versions

MODEL = "baseline-predictor"


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
    assert [v["version"] for v in listed.json()["items"]] == [2, 1]
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


async def test_promotion_points_production_at_the_version_and_repeating_it_conflicts(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6)

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
    await with_versions(registry, tmp_path, MODEL, 0.62, 0.58)
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
    await with_versions(registry, tmp_path, MODEL, 0.6)
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
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.6, 0.65)
    assert (await registry.promote(MODEL, 1)).status_code == 200

    equal = await registry.promote(MODEL, 2)
    better = await registry.promote(MODEL, 3)

    assert equal.status_code == 200, equal.text
    assert better.status_code == 200, better.text
    assert (better.json()["from_version"], better.json()["to_version"]) == (2, 3)


async def test_forcing_past_the_gate_needs_a_reason_and_is_audited_as_forced(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.62, 0.5)
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
    assert [(c["to_version"], c["forced"]) for c in history.json()["items"]] == [
        (2, True),
        (1, False),
    ]


async def test_rollback_returns_production_to_the_version_before_the_last_change(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.65)
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


async def test_concurrent_alias_moves_keep_one_row_and_a_complete_audit_chain(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.6, 0.6, 0.6)

    moves = await asyncio.gather(
        *(registry.promote(MODEL, n, alias="staging") for n in (1, 2, 3, 4, 1, 2, 3, 4))
    )

    succeeded = [m for m in moves if m.status_code == 200]
    assert all(m.status_code in (200, 409) for m in moves), [m.text for m in moves]
    history = await registry.api.get(
        f"/v1/models/{MODEL}/aliases/staging/history", headers=registry.key("reader")
    )
    chain = list(reversed(history.json()["items"]))
    assert len(chain) == len(succeeded)
    assert chain[0]["from_version"] is None
    for before, after in itertools.pairwise(chain):
        assert after["from_version"] == before["to_version"]
    model = await registry.api.get(f"/v1/models/{MODEL}", headers=registry.key("reader"))
    assert model.json()["aliases"] == {"staging": chain[-1]["to_version"]}


async def test_every_move_publishes_model_promoted_with_the_manifest_reference(
    registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6, 0.65)
    versions = await registry.api.get(
        f"/v1/models/{MODEL}/versions", headers=registry.key("reader")
    )
    manifest_sha = {
        v["version"]: next(f["sha256"] for f in v["files"] if f["name"] == "manifest.json")
        for v in versions.json()["items"]
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
