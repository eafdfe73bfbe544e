"""A torch-trained predictor pushed through the registry's API: accepted, measured on the
registry's own evaluation set with finite figures, and served as it was trained."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.store import ObjectStore
from marketsense.modelkit.torch_predictor import TorchSettings, train_torch_predictor
from marketsense.models.evaluation import predictor_metrics, read_predictor_set
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE
from marketsense.models.predictor import OnnxPredictor
from tests.gate_support import add_outcome_set, outcome_set
from tests.predictor_support import simulated_table
from tests.registry_support import Registry

MODEL = "torch-predictor"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch predictor of four simulated symbols, trained once for every backend."""
    folder = tmp_path_factory.mktemp("torch") / "bundle"
    settings = TorchSettings(max_epochs=10, patience=3, batch_size=128)
    train_torch_predictor(simulated_table(), folder, name=MODEL, source="sim", settings=settings)
    return folder


async def test_a_torch_bundle_is_accepted_measured_and_served_as_trained(
    registry: Registry, store: ObjectStore, folder: Path, tmp_path: Path
) -> None:
    await add_outcome_set(registry.runtime)
    assert (await registry.create_model(MODEL)).status_code == 201

    pushed = await registry.push(MODEL, folder)

    assert pushed.status_code == 201, pushed.text
    version = pushed.json()
    assert version["manifest"]["training"]["trainer"] == "torch-mlp"
    measured = {m["metric"]: m["value"] for m in version["measured"] if m["variant"] == "fp32"}
    assert {"holdout_auc", "holdout_accuracy", "holdout_log_loss"} <= set(measured)
    assert all(math.isfinite(value) for value in measured.values())
    # The stored graph, loaded as prediction loads it, gives what the trained bundle gives, and
    # the registry's figures are that graph's on the registry's set.
    served = tmp_path / "served"
    served.mkdir()
    for name in (MODEL_FILE, MANIFEST_FILE):
        (served / name).write_bytes(await store.read_key(f"models/{MODEL}/1/{name}"))
    evaluation = read_predictor_set(outcome_set())
    rows = evaluation.frame[list(FEATURE_COLUMNS)].to_numpy(np.float32)
    assert np.array_equal(
        OnnxPredictor(served).predict_up(rows), OnnxPredictor(folder).predict_up(rows)
    )
    recomputed = predictor_metrics(OnnxPredictor(served), evaluation)
    assert measured["holdout_auc"] == pytest.approx(recomputed["holdout_auc"])
    assert version["metrics"]["holdout_rows"] == len(rows)
