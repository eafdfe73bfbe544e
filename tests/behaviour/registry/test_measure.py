"""The registry's own measurement: every graph of a version scored on its evaluation set, a
stored version measured on a set added after it, and what a version's API form reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketsense.common.db.models import EvaluationSet, ModelVersion, VersionMetric
from marketsense.models.checks import InvalidUpload, checked_sentiment
from marketsense.models.evaluation import read_sentiment_set
from marketsense.models.files import QUANTIZED_MODEL_FILE
from marketsense.registry import measure
from marketsense.registry.measure import (
    ensure_measured,
    measure_warnings,
    score_folder,
    served_variant,
    variants_in,
)
from tests.gate_support import add_outcome_set, weighted_predictor
from tests.registry_support import Registry
from tests.sentiment_support import linked_copy, read_manifest

MODEL = "measured-predictor"
SET = EvaluationSet(id=2, kind="predictor", name="outcomes", sha256="1" * 64)


def tiny_sentiment_set() -> bytes:
    """Twenty labelled texts, clear enough for the default model."""
    rows = ["text,label"]
    rows += [f"Shares soar {i}% after record profit and strong demand,positive" for i in range(10)]
    rows += [f"Company collapses into bankruptcy as losses mount {i},negative" for i in range(10)]
    return ("\n".join(rows) + "\n").encode()


def test_every_graph_of_a_sentiment_bundle_is_scored_and_a_broken_one_named(
    sentiment_model_dir: Path, tmp_path: Path
) -> None:
    data = read_sentiment_set(tiny_sentiment_set())
    folder = Path(shutil.copytree(sentiment_model_dir, tmp_path / "bundle"))

    scores = score_folder("sentiment", folder, data, "tiny")
    (folder / QUANTIZED_MODEL_FILE).write_bytes(b"not a graph")
    with pytest.raises(InvalidUpload) as broken:
        score_folder("sentiment", folder, data, "tiny")

    assert set(scores) == {"fp32", "int8"}
    assert scores["fp32"]["heldout_rows"] == 20
    assert scores["fp32"]["heldout_accuracy"] >= 0.9
    assert scores["int8"]["heldout_accuracy"] >= 0.9
    assert "model.int8.onnx fails on the registry's evaluation set 'tiny'" in str(broken.value)


def test_graphs_the_checks_loaded_are_scored_without_loading_them_again(
    sentiment_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = read_sentiment_set(tiny_sentiment_set())
    folder = linked_copy(sentiment_model_dir, tmp_path / "bundle")
    _, graphs = checked_sentiment(folder, read_manifest(folder))
    loaded_again = score_folder("sentiment", folder, data, "tiny")

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a graph the checks loaded was loaded again")

    monkeypatch.setattr(measure, "SentimentModel", no_loading)
    reused = score_folder("sentiment", folder, data, "tiny", graphs)

    assert sorted(graphs) == ["fp32", "int8"]
    assert reused == loaded_again


def test_the_served_variant_is_the_configured_one_when_the_bundle_has_it(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")

    assert variants_in("sentiment", tmp_path) == ["fp32"]
    assert variants_in("predictor", tmp_path) == ["fp32"]
    assert served_variant("sentiment", {"model.onnx", "model.int8.onnx"}, "int8") == "int8"
    assert served_variant("sentiment", {"model.onnx", "model.int8.onnx"}, "fp32") == "fp32"
    assert served_variant("sentiment", {"model.onnx"}, "int8") == "fp32"
    assert served_variant("predictor", {"model.onnx", "model.int8.onnx"}, "int8") == "fp32"


def test_a_claim_far_above_the_measurement_is_a_warning() -> None:
    def warn(claim: float) -> list[str]:
        return measure_warnings(
            "predictor",
            claimed={"holdout_auc": claim},
            served={"holdout_auc": 0.6},
            variant="fp32",
            active=SET,
        )

    assert warn(0.649) == []
    (warning,) = warn(0.66)
    assert "claims holdout_auc 0.6600 but the registry measured 0.6000" in warning
    assert "'outcomes'" in warning
    (unset,) = measure_warnings("predictor", claimed={}, served={}, variant="fp32", active=None)
    assert "no predictor evaluation set" in unset
    (later,) = measure_warnings("predictor", claimed={}, served={}, variant="fp32", active=SET)
    assert "measures it when it is promoted" in later


async def test_a_version_pushed_before_its_set_is_measured_once_on_it(
    registry: Registry, tmp_path: Path
) -> None:
    assert (await registry.create_model(MODEL)).status_code == 201
    pushed = await registry.push(MODEL, weighted_predictor(tmp_path / "v1", skill=3))
    assert pushed.json()["measured"] == []
    await add_outcome_set(registry.runtime)
    async with registry.runtime.database.session() as session:
        row = await session.scalar(select(ModelVersion).where(ModelVersion.model_name == MODEL))
        active = await session.scalar(select(EvaluationSet))
    assert row is not None
    assert active is not None

    for _ in range(2):
        await ensure_measured(
            registry.runtime,
            kind="predictor",
            row=row,
            evaluation_set=active,
            work_dir=tmp_path / "work",
        )

    async with registry.runtime.database.session() as session:
        count = await session.scalar(select(func.count()).select_from(VersionMetric))
    assert count == 4  # auc, accuracy, log loss, rows: measured once
    version = await registry.api.get(
        f"/v1/models/{MODEL}/versions/1", headers=registry.key("reader")
    )
    assert version.json()["metrics"]["holdout_auc"] == pytest.approx(0.9018, abs=1e-4)
    assert version.json()["warnings"] == []
    assert list((tmp_path / "work").iterdir()) == []  # the unpacked copy is gone
