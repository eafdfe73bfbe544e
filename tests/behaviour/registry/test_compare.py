"""Two versions side by side: metrics measured on the same set and variant only, lineage, the
manifest fields and the files that differ."""

from __future__ import annotations

import json
from pathlib import Path

from marketsense.common.db.models import EvaluationSet, ModelVersion, VersionMetric
from marketsense.registry.compare import file_differences
from tests.artifacts import small_predictor
from tests.registry_support import Registry, with_versions

MODEL = "baseline-predictor"
A, B = 1001, 1002
"""Ids of the evaluation sets made here, clear of those the registry adds itself."""


async def measured(registry: Registry, rows: list[tuple[int, str, int, str, float]]) -> None:
    """Store metrics as the registry would: (version, variant, set id, metric, value)."""
    async with registry.runtime.database.session() as session:
        for set_id in sorted({r[2] for r in rows}):
            session.add(
                EvaluationSet(
                    id=set_id,
                    kind="predictor",
                    name=f"window-{set_id}",
                    uri=f"evaluation-sets/{set_id}.parquet",
                    sha256=f"{set_id:064x}",
                    size=10,
                    rows=5,
                    source="test",
                    created_by="approver-key",
                )
            )
        await session.flush()
        for version, variant, set_id, metric, value in rows:
            session.add(
                VersionMetric(
                    model_name=MODEL,
                    version=version,
                    variant=variant,
                    evaluation_set_id=set_id,
                    metric=metric,
                    value=value,
                )
            )
        await session.commit()


async def test_metrics_are_compared_only_where_both_were_measured_alike(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6)
    other = small_predictor(tmp_path / "seed", seed=12, auc=0.7, training={"rows": "900"})
    assert (await registry.push(MODEL, other)).status_code == 201
    await measured(
        registry,
        [
            (1, "fp32", A, "holdout_auc", 0.55),
            (2, "fp32", A, "holdout_auc", 0.61),
            (1, "fp32", A, "holdout_log_loss", 0.69),  # version 2 lacks it on set A
            (2, "int8", A, "holdout_auc", 0.9),  # version 1 has no int8 on set A
            (1, "fp32", B, "holdout_auc", 0.5),  # only version 1 was scored on set B
        ],
    )

    answer = await registry.api.get(
        f"/v1/models/{MODEL}/compare", params={"a": 1, "b": 2}, headers=registry.key("reader")
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    # The registry measured both at push on its own set too; the sets made here are A and B.
    made = [m for m in body["metrics"] if m["evaluation_set_id"] in (A, B)]
    assert [(m["evaluation_set_id"], m["variant"], m["metric"], m["a"], m["b"]) for m in made] == [
        (A, "fp32", "holdout_auc", 0.55, 0.61)
    ]
    assert abs(made[0]["difference"] - 0.06) < 1e-12
    assert made[0]["evaluation_set_sha256"] == f"{A:064x}"
    assert "metrics" in body["manifest_fields_changed"]
    assert "training" in body["manifest_fields_changed"]
    assert "version" not in body["manifest_fields_changed"]
    assert body["a"]["version"] == 1
    assert body["b"]["source"] == {"rows": "900"}
    changes = {f["name"]: f["change"] for f in body["files"]}
    # Another seed gives another graph; the manifest differs in its version at least.
    assert changes == {"manifest.json": "changed", "model.onnx": "changed"}


async def test_comparing_an_unknown_version_or_without_both_numbers_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    await with_versions(registry, tmp_path, MODEL, 0.6)

    unknown = await registry.api.get(
        f"/v1/models/{MODEL}/compare", params={"a": 1, "b": 4}, headers=registry.key("reader")
    )
    one_side = await registry.api.get(
        f"/v1/models/{MODEL}/compare", params={"a": 1}, headers=registry.key("reader")
    )
    same = await registry.api.get(
        f"/v1/models/{MODEL}/compare", params={"a": 1, "b": 1}, headers=registry.key("reader")
    )

    assert unknown.status_code == 404
    assert "version 4" in unknown.json()["detail"]
    assert one_side.status_code == 422
    assert "b" in str(one_side.json()["detail"])
    assert same.status_code == 200
    assert {f["change"] for f in same.json()["files"]} == {"same"}
    assert same.json()["manifest_fields_changed"] == []


def version_with(files: dict[str, tuple[str, int]]) -> ModelVersion:
    """A version row whose stored files are `files` (name: (sha256, size))."""
    listing = [
        {"name": n, "uri": f"models/m/1/{n}", "sha256": sha, "size": size}
        for n, (sha, size) in files.items()
    ]
    return ModelVersion(model_name="m", version=1, manifest="{}", files=json.dumps(listing))


def test_files_are_same_changed_added_or_removed_by_name() -> None:
    a = version_with({"model.onnx": ("a" * 64, 10), "model.int8.onnx": ("b" * 64, 5)})
    b = version_with(
        {
            "model.onnx": ("a" * 64, 10),
            "tokenizer.json": ("c" * 64, 3),
            "model.int8.onnx": ("d" * 64, 5),
        }
    )

    changes = [(f.name, f.change) for f in file_differences(a, b)]

    assert changes == [
        ("model.int8.onnx", "changed"),
        ("model.onnx", "same"),
        ("tokenizer.json", "added"),
    ]
    assert [(f.name, f.change) for f in file_differences(b, a)][-1] == ("tokenizer.json", "removed")
