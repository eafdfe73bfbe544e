"""Predictors whose quality on an evaluation set is known by construction, and that set: for
the suites of the registry's measurement and gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from skl2onnx import to_onnx
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from marketsense.common.features import FEATURE_COLUMNS, FEATURE_SCHEMA
from marketsense.common.parquet import to_parquet_bytes
from marketsense.common.runtime import Runtime
from marketsense.models.predictor import PredictorManifest, write_predictor
from marketsense.registry.evaluation_sets import add_set

TRUE_WEIGHTS = np.random.default_rng(5).normal(size=len(FEATURE_COLUMNS))
"""The weights the evaluation set's outcomes follow."""


def outcome_set(*, rows: int = 400, seed: int = 1) -> bytes:
    """A predictor evaluation set whose up/down outcomes follow `TRUE_WEIGHTS` plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURE_COLUMNS)))
    label = (x @ TRUE_WEIGHTS + rng.normal(scale=1.5, size=rows) > 0).astype(int)
    frame = pd.DataFrame(x, columns=list(FEATURE_COLUMNS))
    frame.insert(0, "label", label)
    frame.insert(0, "date", [f"2026-09-{1 + i % 28:02d}" for i in range(rows)])
    frame.insert(0, "symbol", [f"S{i % 7}" for i in range(rows)])
    return to_parquet_bytes(frame)


async def add_outcome_set(runtime: Runtime, *, seed: int = 1) -> int:
    """Add an outcome set to the registry as its active predictor set; its id."""
    row = await add_set(
        runtime,
        kind="predictor",
        name=f"outcomes-{seed}",
        data=outcome_set(seed=seed),
        source="built by the test",
        actor="test",
    )
    return row.id


def weighted_predictor(
    directory: Path,
    *,
    skill: float,
    claimed_auc: float = 0.6,
    noise_seed: int = 3,
    name: str = "weighted",
) -> Path:
    """A predictor folder whose weights are `skill` times `TRUE_WEIGHTS` plus unit noise: skill
    2 ranks the set's outcomes well, 0 at random, -2 backwards."""
    rng = np.random.default_rng(noise_seed)
    weights = skill * TRUE_WEIGHTS + rng.normal(size=len(FEATURE_COLUMNS))
    x = np.zeros((2, len(FEATURE_COLUMNS)), dtype=np.float32)
    model = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True),
        LogisticRegression(),
    )
    model.fit(x, [0, 1])
    regression = model[-1]
    regression.coef_ = weights.reshape(1, -1)
    regression.intercept_ = np.zeros(1)
    graph = to_onnx(model, x[:1], options={"zipmap": False}, target_opset=17)
    manifest = PredictorManifest(
        name=name,
        version="1",
        feature_schema=FEATURE_SCHEMA,
        features=list(FEATURE_COLUMNS),
        input_name=graph.graph.input[0].name,
        probability_output="probabilities",
        metrics={"holdout_auc": claimed_auc},
        evaluation_window="whatever the pusher says",
        training={"skill": str(skill), "noise_seed": str(noise_seed)},
    )
    write_predictor(directory, onnx_bytes=graph.SerializeToString(), manifest=manifest)
    return directory
