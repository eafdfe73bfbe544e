"""Predictor artifacts: a manifest and an ONNX graph, scored with onnxruntime."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field

from marketsense.common.features import FEATURE_SCHEMA
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE
from marketsense.models.integrity import ManifestFile, list_files


class PredictorManifest(BaseModel):
    """What a predictor needs and promises: its inputs, outputs, schema and measured quality."""

    # A misspelt field would otherwise be dropped in silence and its default used instead.
    model_config = ConfigDict(extra="forbid")

    name: str
    """Model name."""
    version: str
    """Version of this artifact."""
    kind: str = "predictor"
    """Always `predictor` for these artifacts."""
    feature_schema: str
    """Feature schema the model reads; processing must produce it."""
    features: list[str]
    """Feature columns, in input order."""
    input_name: str
    """Name of the ONNX input tensor (float32, [batch, len(features)])."""
    probability_output: str
    """Name of the ONNX output with class probabilities ([batch, 2]; column 1 is up)."""
    horizon_days: int = Field(default=1, ge=1)
    """How many trading days ahead the model predicts."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Held-out evaluation metrics."""
    evaluation_window: str | None = None
    """What `metrics` were measured on; promotion compares only versions measured on the same."""
    training: dict[str, str] = Field(default_factory=dict)
    """Lineage: data source, date range, symbols."""
    created_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    """When the artifact was built."""
    files: list[ManifestFile] = Field(default_factory=list)
    """Every bundle file but the manifest, with its sha256 and size; required at push (empty
    only in manifests stored before the registry checked files)."""


class OnnxPredictor:
    """A loaded predictor; thread-safe, as onnxruntime sessions are."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.manifest = PredictorManifest.model_validate_json(
            (directory / MANIFEST_FILE).read_text()
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        inputs = {i.name for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        if self.manifest.input_name not in inputs:
            raise ValueError(f"model has no input {self.manifest.input_name!r} (has {inputs})")
        if self.manifest.probability_output not in outputs:
            raise ValueError(
                f"model has no output {self.manifest.probability_output!r} (has {outputs})"
            )

    def predict_up(self, rows: np.ndarray) -> np.ndarray:
        """Probability of an up move for each row of features (float32, manifest order)."""
        (probabilities,) = self._session.run(
            [self.manifest.probability_output],
            {self.manifest.input_name: rows.astype(np.float32, copy=False)},
        )
        return np.asarray(probabilities)[:, 1]


def warm_up_predictor(predictor: OnnxPredictor) -> None:
    """Score one row, so a graph that cannot run fails before it serves, not on a request."""
    if predictor.manifest.feature_schema != FEATURE_SCHEMA:
        raise ValueError(
            f"{predictor.manifest.name} reads {predictor.manifest.feature_schema}; "
            f"processing produces {FEATURE_SCHEMA}"
        )
    row = np.zeros((1, len(predictor.manifest.features)), dtype=np.float32)
    (prob_up,) = predictor.predict_up(row)
    if not 0.0 <= float(prob_up) <= 1.0:
        raise ValueError(f"{predictor.manifest.name} gave a probability of {prob_up}")


def write_predictor(
    directory: Path, *, onnx_bytes: bytes, manifest: PredictorManifest
) -> PredictorManifest:
    """Write a predictor artifact folder; return its manifest, which lists the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(onnx_bytes)
    written = manifest.model_copy(update={"files": list_files(directory)})
    (directory / MANIFEST_FILE).write_text(json.dumps(written.model_dump(mode="json"), indent=2))
    return written
