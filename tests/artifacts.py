"""Small predictor artifacts built in a second, for tests that push, register or serve one."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
from skl2onnx import to_onnx
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.models.files import MANIFEST_FILE
from marketsense.models.integrity import list_files
from marketsense.models.predictor import PredictorManifest, write_predictor

WINDOW = "simulated 2026-06-01..2026-09-30"
"""Evaluation window of the small predictors unless a test says otherwise."""


@functools.cache
def predictor_graph(seed: int) -> tuple[bytes, str]:
    """A logistic regression over the feature columns, trained on random data whose labels
    depend on `seed`, exported to ONNX; and its input name (built once per seed)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, len(FEATURE_COLUMNS))).astype(np.float32)
    y = (x @ rng.normal(size=len(FEATURE_COLUMNS)) + rng.normal(size=len(x)) > 0).astype(int)
    # Feature rows carry NaN where a day had no texts; the imputer lets the graph score them.
    model = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
        LogisticRegression(max_iter=500),
    )
    model.fit(x, y)
    graph = to_onnx(model, x[:1], options={"zipmap": False}, target_opset=17)
    return graph.SerializeToString(), graph.graph.input[0].name


def small_predictor(
    directory: Path,
    *,
    seed: int = 11,
    name: str = "small-predictor",
    version: str = "1",
    auc: float = 0.6,
    window: str | None = WINDOW,
    **manifest_overrides: Any,
) -> Path:
    """A valid predictor folder (model.onnx, manifest.json) claiming holdout AUC `auc` on
    `window`; two seeds score the same features differently; `manifest_overrides` replace
    manifest fields (to make one the registry must refuse)."""
    onnx_bytes, input_name = predictor_graph(seed)
    fields: dict[str, Any] = {
        "name": name,
        "version": version,
        "feature_schema": FEATURE_SCHEMA,
        "features": list(FEATURE_COLUMNS),
        "input_name": input_name,
        "probability_output": "probabilities",
        "metrics": {"holdout_auc": auc},
        "evaluation_window": window,
    } | manifest_overrides
    write_predictor(directory, onnx_bytes=onnx_bytes, manifest=PredictorManifest(**fields))
    return list_manifest_files(directory)


def list_manifest_files(directory: Path) -> Path:
    """Rewrite the folder's manifest.json to list its files as they are now (after a test
    changed one on purpose, or for a folder built before manifests listed their files)."""
    path = directory / MANIFEST_FILE
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["files"] = [f.model_dump() for f in list_files(directory)]
    path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return directory
