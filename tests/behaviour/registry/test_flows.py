"""The registry's alias flows: moving aliases through the production gate the registry measures
itself, rolling back, auditing every move and refusal, and announcing every move."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from marketsense.common.db.models import (
    EvaluationSet,
    ModelVersion,
    RegistryAudit,
    VersionMetric,
)
from marketsense.common.store import ObjectStore
from tests.artifacts import list_manifest_files
from tests.conftest import eventually
from tests.gate_support import add_outcome_set, weighted_predictor
from tests.registry_support import Registry

MODEL = "baseline-predictor"


@pytest.fixture(autouse=True)
async def outcome_set(registry: Registry) -> int:
    """Every test here has a predictor evaluation set unless it says otherwise."""
    return await add_outcome_set(registry.runtime)


async def with_skills(registry: Registry, tmp_path: Path, *skills: float, **claims: float) -> None:
    """Register MODEL and push one weighted predictor per skill (versions 1, 2, …)."""
    assert (await registry.create_model(MODEL)).status_code == 201
    for number, skill in enumerate(skills, start=1):
        folder = weighted_predictor(
            tmp_path / f"v{number}", skill=skill, claimed_auc=claims.get(f"v{number}", 0.6)
        )
        pushed = await registry.push(MODEL, folder)
        assert pushed.status_code == 201, pushed.text
        assert pushed.json()["version"] == number


async def audit_actions(registry: Registry) -> list[tuple[str, int | None]]:
    """The registry's audit entries for MODEL, oldest first, as (action, version)."""
    async with registry.runtime.database.session() as session:
        rows = await session.scalars(
            select(RegistryAudit)
            .where(RegistryAudit.model_name == MODEL)
            .order_by(RegistryAudit.id)
        )
        return [(row.action, row.version) for row in rows]


async def test_promotion_points_production_at_the_version_and_repeating_it_conflicts(
    registry: Registry, tmp_path: Path
) -> None:
    await with_skills(registry, tmp_path, 3)

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


async def test_gate_compares_what_the_registry_measured_not_what_the_manifest_claims(
    registry: Registry, tmp_path: Path
) -> None:
    # Version 2 claims 0.99 for a graph that ranks the outcomes worse than version 1.
    await with_skills(registry, tmp_path, 3, 0.3, 6, v1=0.6, v2=0.99, v3=0.5)
    assert (await registry.promote(MODEL, 1)).status_code == 200

    inflated = await registry.promote(MODEL, 2)
    better = await registry.promote(MODEL, 3)

    assert inflated.status_code == 409, inflated.text
    detail = inflated.json()["detail"]
    assert "version 2 (fp32) has holdout_auc 0.6" in detail
    assert "below production version 1's 0.9" in detail
    assert "outcomes-1" in detail
    assert "force" in detail
    assert better.status_code == 200, better.text
    assert better.json()["forced"] is False
    assert (better.json()["from_version"], better.json()["to_version"]) == (1, 3)
    assert await audit_actions(registry) == [
        ("push", 1),
        ("push", 2),
        ("push", 3),
        ("promote", 1),
        ("promote_refused", 2),
        ("promote", 3),
    ]


async def test_the_first_production_version_must_clear_the_floor(
    registry: Registry, tmp_path: Path
) -> None:
    await with_skills(registry, tmp_path, -2, 3, v1=0.95)

    backwards = await registry.promote(MODEL, 1)
    sound = await registry.promote(MODEL, 2)

    assert backwards.status_code == 409
    assert "below the floor 0.5000" in backwards.json()["detail"]
    assert "MARKETSENSE_REGISTRY_MIN_HOLDOUT_AUC" in backwards.json()["detail"]
    assert sound.status_code == 200, sound.text
    assert (sound.json()["from_version"], sound.json()["to_version"]) == (None, 2)


async def test_equal_measurements_pass_the_gate(registry: Registry, tmp_path: Path) -> None:
    await with_skills(registry, tmp_path, 3, 3, v2=0.99)  # one graph, two claims
    assert (await registry.promote(MODEL, 2)).status_code == 200

    equal = await registry.promote(MODEL, 1)

    assert equal.status_code == 200, equal.text


async def test_a_champion_pushed_before_a_new_set_is_measured_on_it_when_challenged(
    registry: Registry, tmp_path: Path
) -> None:
    await with_skills(registry, tmp_path, 1, 3)
    assert (await registry.promote(MODEL, 1)).status_code == 200
    newer = await add_outcome_set(registry.runtime, seed=2)

    promoted = await registry.promote(MODEL, 2)

    assert promoted.status_code == 200, promoted.text
    for number in (1, 2):
        version = await registry.api.get(
            f"/v1/models/{MODEL}/versions/{number}", headers=registry.key("reader")
        )
        sets = {m["evaluation_set_id"] for m in version.json()["measured"]}
        assert newer in sets
        assert version.json()["metrics"]["holdout_rows"] == 400


async def test_predictor_promotion_without_an_evaluation_set_is_refused_saying_how_to_add_one(
    registry: Registry, tmp_path: Path
) -> None:
    await with_skills(registry, tmp_path, 3)
    async with registry.runtime.transaction() as session:
        await session.execute(delete(VersionMetric))
        await session.execute(delete(EvaluationSet))

    refused = await registry.promote(MODEL, 1)
    forced = await registry.promote(MODEL, 1, force=True, reason="no outcomes stored yet")

    assert refused.status_code == 409
    assert "no predictor evaluation set" in refused.json()["detail"]
    assert "POST /v1/evaluation-sets?kind=predictor" in refused.json()["detail"]
    assert forced.status_code == 200, forced.text


async def test_an_archived_version_is_never_promoted_again_even_forced(
    registry: Registry, tmp_path: Path
) -> None:
    await with_skills(registry, tmp_path, 3)
    async with registry.runtime.transaction() as session:
        row = await session.scalar(select(ModelVersion).where(ModelVersion.model_name == MODEL))
        assert row is not None
        row.archived_at = dt.datetime.now(dt.UTC)
        row.archive_reason = "claimed 0.99, measured 0.17"

    gated = await registry.promote(MODEL, 1)
    forced = await registry.promote(MODEL, 1, force=True, reason="try anyway")
    staging = await registry.promote(MODEL, 1, alias="staging", holder="publisher")

    for refused in (gated, forced, staging):
        assert refused.status_code == 409
        assert "archived (claimed 0.99, measured 0.17)" in refused.json()["detail"]
    downloadable = await registry.api.get(
        f"/v1/models/{MODEL}/versions/1/files/model.onnx", headers=registry.key("reader")
    )
    assert downloadable.status_code == 200


async def test_forcing_past_the_gate_needs_a_reason_and_is_audited_as_forced(
    registry: Registry, tmp_path: Path
) -> None:
    await with_skills(registry, tmp_path, 3, 0)
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
    await with_skills(registry, tmp_path, 1, 3)
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
    await with_skills(registry, tmp_path, 3, 3, 3, 3)

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
    await with_skills(registry, tmp_path, 3, 0)
    versions = await registry.api.get(
        f"/v1/models/{MODEL}/versions", headers=registry.key("reader")
    )
    manifest_sha = {
        v["version"]: next(f["sha256"] for f in v["files"] if f["name"] == "manifest.json")
        for v in versions.json()["items"]
    }

    assert (await registry.promote(MODEL, 2)).status_code == 200
    assert (await registry.promote(MODEL, 1, force=True, reason="drill")).status_code == 200
    assert (
        await registry.promote(MODEL, 1, alias="staging", holder="publisher")
    ).status_code == 200
    assert (await registry.promote(MODEL, 2)).status_code == 409  # refused: no event

    await eventually(lambda: len(registry.promoted) >= 3)
    seen = [(e.alias, e.version, e.previous_version) for e in registry.promoted]
    assert sorted(seen, key=str) == sorted(
        [("production", "2", None), ("production", "1", "2"), ("staging", "1", None)], key=str
    )
    for event in registry.promoted:
        assert event.model_name == MODEL
        assert event.manifest.sha256 == manifest_sha[int(event.version)]
        manifest = json.loads(await store.get(event.manifest))
        assert manifest["version"] == event.version


# Scoring three pushes of the real model takes half a minute; what it shows does not depend on
# the database or the store, whose part every other test here covers on each of them.
@pytest.mark.parametrize(("database_url", "store"), [("sqlite", "file")], indirect=True)
async def test_the_sentiment_gate_measures_the_graph_processing_serves(
    registry: Registry, sentiment_model_dir: Path, tmp_path: Path
) -> None:
    name = "minilm"
    assert (await registry.create_model(name, kind="sentiment")).status_code == 201
    default = shutil.copytree(sentiment_model_dir, tmp_path / "default")
    # Same fp32 graph; its int8 file is the fp32 graph too, so the served int8 variant is better.
    fp32_as_int8 = shutil.copytree(sentiment_model_dir, tmp_path / "fp32-as-int8")
    shutil.copyfile(fp32_as_int8 / "model.onnx", fp32_as_int8 / "model.int8.onnx")
    fp32_only = shutil.copytree(sentiment_model_dir, tmp_path / "fp32-only")
    (fp32_only / "model.int8.onnx").unlink()
    for changed in (fp32_as_int8, fp32_only):
        list_manifest_files(changed)  # the manifests list the files as they now are
    for number, folder in enumerate((default, fp32_as_int8, fp32_only), start=1):
        pushed = await registry.push(name, folder)
        assert pushed.status_code == 201, pushed.text
        assert pushed.json()["version"] == number
    assert (await registry.promote(name, 2)).status_code == 200

    # Version 1's fp32 graph equals version 2's, but processing serves int8, where it is worse.
    refused = await registry.promote(name, 1)
    fp32_served = await registry.promote(name, 3)

    assert refused.status_code == 409
    assert "version 1 (int8) has heldout_macro_f1 0.7" in refused.json()["detail"]
    assert "below production version 2's 0.8" in refused.json()["detail"]
    assert "(int8)" in refused.json()["detail"]
    assert fp32_served.status_code == 200, fp32_served.text
