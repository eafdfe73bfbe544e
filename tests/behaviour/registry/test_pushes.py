"""Pushing versions: stored with their checksums, measured by the registry on its own evaluation
set next to what the manifest claims, identical content answered with its version, refusals
audited."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from marketsense.common.db.models import RegistryAudit
from marketsense.common.store import ObjectStore
from marketsense.models.evaluation import HELDOUT_SET_PATH
from marketsense.models.integrity import file_sha256
from tests.conftest import INTEGRATION
from tests.gate_support import add_outcome_set, weighted_predictor
from tests.registry_support import Registry, sha256_of

MODEL = "baseline-predictor"


async def audit_entries(registry: Registry, model: str) -> list[RegistryAudit]:
    """The audit entries of a model, oldest first."""
    async with registry.runtime.database.session() as session:
        return list(
            await session.scalars(
                select(RegistryAudit)
                .where(RegistryAudit.model_name == model)
                .order_by(RegistryAudit.id)
            )
        )


async def test_push_stores_the_files_with_their_checksums_and_renames_the_manifest(
    registry: Registry, store: ObjectStore, tmp_path: Path
) -> None:
    set_id = await add_outcome_set(registry.runtime)
    folder = weighted_predictor(tmp_path / "artifact", skill=3, claimed_auc=0.93)
    assert (await registry.create_model(MODEL)).status_code == 201

    pushed = await registry.push(MODEL, folder)

    assert pushed.status_code == 201, pushed.text
    version = pushed.json()
    assert version["model_name"] == MODEL
    assert (version["version"], version["manifest"]["version"]) == (1, "1")
    assert version["manifest"]["name"] == MODEL
    assert version["claimed_metrics"] == {"holdout_auc": pytest.approx(0.93)}
    assert version["metrics"]["holdout_auc"] == pytest.approx(0.9018, abs=1e-4)
    assert version["metrics"]["holdout_rows"] == 400
    assert version["warnings"] == []
    measured = {(m["variant"], m["metric"]): m for m in version["measured"]}
    auc = measured[("fp32", "holdout_auc")]
    assert auc["evaluation_set_id"] == set_id
    assert auc["evaluation_set_name"] == "outcomes-1"
    assert len(auc["evaluation_set_sha256"]) == 64
    assert version["evaluation_window"] == "whatever the pusher says"
    assert version["created_by"] == "publisher-key"
    files = {f["name"]: f for f in version["files"]}
    assert set(files) == {"model.onnx", "manifest.json"}
    assert files["model.onnx"]["sha256"] == sha256_of(folder / "model.onnx")
    assert files["model.onnx"]["size"] == (folder / "model.onnx").stat().st_size
    assert (
        await store.read_key(f"models/{MODEL}/1/model.onnx") == (folder / "model.onnx").read_bytes()
    )
    stored_manifest = json.loads(await store.read_key(f"models/{MODEL}/1/manifest.json"))
    assert stored_manifest == version["manifest"]
    assert [(e.action, e.version) for e in await audit_entries(registry, MODEL)] == [("push", 1)]


async def test_an_inflated_claim_is_kept_as_claimed_and_warned_about(
    registry: Registry, tmp_path: Path
) -> None:
    await add_outcome_set(registry.runtime)
    assert (await registry.create_model(MODEL)).status_code == 201
    folder = weighted_predictor(tmp_path / "artifact", skill=0.3, claimed_auc=0.99)

    pushed = await registry.push(MODEL, folder)

    assert pushed.status_code == 201, pushed.text
    version = pushed.json()
    assert version["claimed_metrics"]["holdout_auc"] == pytest.approx(0.99)
    assert version["metrics"]["holdout_auc"] < 0.7
    (warning,) = version["warnings"]
    assert "claims holdout_auc 0.9900 but the registry measured 0.6" in warning
    (entry,) = await audit_entries(registry, MODEL)
    assert warning in entry.detail


async def test_identical_content_returns_its_version_and_different_content_a_new_one(
    registry: Registry, tmp_path: Path
) -> None:
    await add_outcome_set(registry.runtime)
    assert (await registry.create_model(MODEL)).status_code == 201
    folder = weighted_predictor(tmp_path / "artifact", skill=3)

    first = await registry.push(MODEL, folder)
    again = await registry.push(MODEL, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["training"]["note"] = "same graph, one more line of lineage"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    changed = await registry.push(MODEL, folder)

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["version"] == 1
    assert again.json()["content_sha256"] == first.json()["content_sha256"]
    assert changed.status_code == 201, changed.text
    assert changed.json()["version"] == 2
    assert changed.json()["content_sha256"] != first.json()["content_sha256"]
    listed = await registry.api.get(f"/v1/models/{MODEL}/versions", headers=registry.key("reader"))
    assert [v["version"] for v in listed.json()["items"]] == [2, 1]
    actions = [(e.action, e.version) for e in await audit_entries(registry, MODEL)]
    assert actions == [("push", 1), ("push_repeated", 1), ("push", 2)]


async def test_concurrent_identical_pushes_make_one_version(
    registry: Registry, tmp_path: Path
) -> None:
    await add_outcome_set(registry.runtime)
    assert (await registry.create_model(MODEL)).status_code == 201
    folder = weighted_predictor(tmp_path / "artifact", skill=3)

    responses = await asyncio.gather(*(registry.push(MODEL, folder) for _ in range(3)))

    assert sorted(r.status_code for r in responses) == [200, 200, 201], [r.text for r in responses]
    assert {r.json()["version"] for r in responses} == {1}


async def test_concurrent_pushes_get_consecutive_version_numbers(
    registry: Registry, tmp_path: Path
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201
    folders = [weighted_predictor(tmp_path / f"p{i}", skill=i) for i in range(5)]

    responses = await asyncio.gather(*(registry.push(MODEL, f) for f in folders))

    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == [1, 2, 3, 4, 5]
    by_number = {r.json()["version"]: r.json()["manifest"]["training"]["skill"] for r in responses}
    for number, skill in by_number.items():
        stored = await registry.api.get(
            f"/v1/models/{MODEL}/versions/{number}", headers=registry.key("reader")
        )
        assert stored.json()["manifest"]["training"]["skill"] == skill


async def test_without_a_predictor_set_a_push_is_stored_unmeasured_with_a_warning(
    registry: Registry, tmp_path: Path
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201

    pushed = await registry.push(MODEL, weighted_predictor(tmp_path / "artifact", skill=3))

    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["metrics"] == {}
    assert pushed.json()["measured"] == []
    (warning,) = pushed.json()["warnings"]
    assert "no predictor evaluation set" in warning
    assert "POST /v1/evaluation-sets?kind=predictor" in warning


# The real model's 150 MB push takes seconds of CPU on any backend: it runs embedded and on the
# real servers (PostgreSQL and S3 hold what it stores), not on the two mixed pairs besides.
@pytest.mark.parametrize(
    ("database_url", "store"),
    [("sqlite", "file"), pytest.param("postgres", "s3", marks=INTEGRATION)],
    indirect=True,
)
async def test_a_sentiment_push_is_measured_per_graph_on_the_shipped_held_out_texts(
    registry: Registry, sentiment_model_dir: Path
) -> None:
    assert (await registry.create_model("minilm", kind="sentiment")).status_code == 201

    pushed = await registry.push("minilm", sentiment_model_dir)

    assert pushed.status_code == 201, pushed.text
    version = pushed.json()
    by_variant = {
        m["variant"]: m["value"] for m in version["measured"] if m["metric"] == "heldout_macro_f1"
    }
    assert set(by_variant) == {"fp32", "int8"}
    assert by_variant["fp32"] > 0.75
    assert by_variant["int8"] > 0.75
    assert version["metrics"]["heldout_macro_f1"] == by_variant["int8"]  # the served default
    (sha,) = {m["evaluation_set_sha256"] for m in version["measured"]}
    assert sha == file_sha256(HELDOUT_SET_PATH)


async def test_a_refused_push_is_audited_with_the_reason(
    registry: Registry, tmp_path: Path
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201
    folder = weighted_predictor(tmp_path / "artifact", skill=3)
    (folder / "model.onnx").write_bytes(b"not a graph")

    refused = await registry.push(MODEL, folder)

    assert refused.status_code == 422
    (entry,) = await audit_entries(registry, MODEL)
    assert entry.action == "push_refused"
    assert entry.actor == "publisher-key"
    assert entry.detail == refused.json()["detail"]
