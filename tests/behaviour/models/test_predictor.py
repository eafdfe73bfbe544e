"""Predictor artifacts: written, loaded, scored with onnxruntime, warmed up before serving."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE
from marketsense.models.predictor import (
    OnnxPredictor,
    PredictorManifest,
    warm_up_predictor,
    write_predictor,
)
from tests.artifacts import predictor_graph, small_predictor


def linear_graph(weights: np.ndarray, bias: np.ndarray) -> bytes:
    """An ONNX graph `probabilities = X @ weights + bias` of one float input `X`."""
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["XW"]),
        helper.make_node("Add", ["XW", "B"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, weights.shape[0]])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        initializer=[
            numpy_helper.from_array(weights.astype(np.float32), "W"),
            numpy_helper.from_array(bias.astype(np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what the installed onnxruntime reads, whatever onnx writes by default
    return bytes(model.SerializeToString())


def manifest(**fields: object) -> PredictorManifest:
    """A manifest of a linear graph over every feature, with `fields` replaced."""
    values: dict[str, object] = {
        "name": "linear",
        "version": "2",
        "feature_schema": FEATURE_SCHEMA,
        "features": list(FEATURE_COLUMNS),
        "input_name": "X",
        "probability_output": "probabilities",
    }
    return PredictorManifest.model_validate(values | fields)


def test_a_written_predictor_loads_with_its_manifest(tmp_path: Path) -> None:
    written = manifest(metrics={"holdout_auc": 0.61}, training={"source": "simulated"})
    graph = linear_graph(np.zeros((len(FEATURE_COLUMNS), 2)), np.array([0.3, 0.7]))

    write_predictor(tmp_path / "new" / "predictor", onnx_bytes=graph, manifest=written)

    folder = tmp_path / "new" / "predictor"
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST_FILE, MODEL_FILE]
    assert (folder / MODEL_FILE).read_bytes() == graph
    assert json.loads((folder / MANIFEST_FILE).read_text())["metrics"] == {"holdout_auc": 0.61}
    loaded = OnnxPredictor(folder)
    # The loaded manifest also lists the files, which the one given did not.
    assert loaded.manifest.model_dump(exclude={"files"}) == written.model_dump(exclude={"files"})
    assert loaded.manifest.created_at.tzinfo is not None


def test_a_written_predictor_manifest_lists_its_graph_with_sha256_and_size(tmp_path: Path) -> None:
    graph = linear_graph(np.zeros((len(FEATURE_COLUMNS), 2)), np.array([0.3, 0.7]))

    write_predictor(tmp_path, onnx_bytes=graph, manifest=manifest())

    listed = json.loads((tmp_path / MANIFEST_FILE).read_text())["files"]
    assert listed == [
        {"name": MODEL_FILE, "sha256": hashlib.sha256(graph).hexdigest(), "size": len(graph)}
    ]


def test_predict_up_is_the_second_probability_column_for_every_row(tmp_path: Path) -> None:
    width = len(FEATURE_COLUMNS)
    weights = np.zeros((width, 2))
    weights[0] = [-1.0, 1.0]  # the first feature moves mass from down to up
    write_predictor(
        tmp_path,
        onnx_bytes=linear_graph(weights, np.array([0.5, 0.5])),
        manifest=manifest(),
    )
    rows = np.zeros((3, width))
    rows[:, 0] = [0.0, 0.1, -0.2]

    prob_up = OnnxPredictor(tmp_path).predict_up(rows)  # float64 in: cast, not refused

    np.testing.assert_allclose(prob_up, [0.5, 0.6, 0.3], atol=1e-6)
    assert OnnxPredictor(tmp_path).predict_up(np.zeros((0, width), np.float32)).shape == (0,)


def test_a_trained_predictor_scores_rows_with_missing_sentiment(tmp_path: Path) -> None:
    small_predictor(tmp_path, seed=3)
    rows = np.random.default_rng(0).normal(size=(5, len(FEATURE_COLUMNS))).astype(np.float32)
    rows[:, FEATURE_COLUMNS.index("sentiment_mean")] = np.nan

    prob_up = OnnxPredictor(tmp_path).predict_up(rows)

    assert prob_up.shape == (5,)
    assert ((prob_up >= 0) & (prob_up <= 1)).all()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"input_name": "features"}, "model has no input 'features'"),
        ({"probability_output": "label_probs"}, "model has no output 'label_probs'"),
    ],
)
def test_a_manifest_naming_what_the_graph_lacks_does_not_load(
    tmp_path: Path, fields: dict[str, str], problem: str
) -> None:
    onnx_bytes, input_name = predictor_graph(11)
    write_predictor(
        tmp_path, onnx_bytes=onnx_bytes, manifest=manifest(**({"input_name": input_name} | fields))
    )

    with pytest.raises(ValueError, match=problem):
        OnnxPredictor(tmp_path)


def test_warm_up_passes_a_predictor_of_the_served_schema(tmp_path: Path) -> None:
    warm_up_predictor(OnnxPredictor(small_predictor(tmp_path)))


def test_warm_up_refuses_a_predictor_of_another_feature_schema(tmp_path: Path) -> None:
    predictor = OnnxPredictor(small_predictor(tmp_path, feature_schema="technical-v0"))

    with pytest.raises(ValueError, match="reads technical-v0; processing produces"):
        warm_up_predictor(predictor)


def test_warm_up_refuses_a_graph_answering_a_probability_outside_zero_to_one(
    tmp_path: Path,
) -> None:
    graph = linear_graph(np.zeros((len(FEATURE_COLUMNS), 2)), np.array([-1.0, 2.0]))
    write_predictor(tmp_path, onnx_bytes=graph, manifest=manifest())

    with pytest.raises(ValueError, match=r"linear gave a probability of 2\.0"):
        warm_up_predictor(OnnxPredictor(tmp_path))
