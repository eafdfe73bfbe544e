"""Scoring without storage: signals from probabilities, and feature rows a caller supplies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from marketsense.models.predictor import PredictorManifest
from marketsense.prediction.schemas import PredictionRead, PredictResponse, PredictRow


def signal_for(prob_up: float, *, threshold: float) -> str:
    """Turn a probability into a trading signal."""
    if prob_up >= 0.5 + threshold:
        return "up"
    if prob_up <= 0.5 - threshold:
        return "down"
    return "flat"


FieldProblem = dict[str, Any]
"""One invalid field, shaped like FastAPI's validation errors (type, loc, msg, input)."""


class FeatureMismatch(ValueError):
    """Supplied feature rows do not fit the served model's inputs."""

    def __init__(self, problems: list[FieldProblem]):
        super().__init__(f"{len(problems)} feature problem(s)")
        self.problems = problems


def feature_matrix(manifest: PredictorManifest, rows: Sequence[PredictRow]) -> np.ndarray:
    """The model's input (float32, manifest column order, missing as NaN) for supplied rows;
    raise FeatureMismatch naming every absent or unknown feature."""
    wanted = manifest.features
    known = set(wanted)
    problems: list[FieldProblem] = []
    for i, row in enumerate(rows):
        for column in wanted:
            if column not in row.features:
                problems.append(
                    {
                        "type": "missing",
                        "loc": ("body", "rows", i, "features", column),
                        "msg": f"missing feature {column} ({manifest.name} version "
                        f"{manifest.version} reads it; send null for a missing value)",
                        "input": None,
                    }
                )
        for column in row.features.keys() - known:
            problems.append(
                {
                    "type": "extra_forbidden",
                    "loc": ("body", "rows", i, "features", column),
                    "msg": f"unknown feature {column} ({manifest.name} version "
                    f"{manifest.version} reads {', '.join(wanted)})",
                    "input": row.features[column],
                }
            )
    if problems:
        raise FeatureMismatch(problems)
    nan = float("nan")
    return np.array(
        [[nan if (v := row.features[c]) is None else v for c in wanted] for row in rows],
        dtype=np.float32,
    ).reshape(len(rows), len(wanted))


def scorable(probabilities: np.ndarray) -> None:
    """Raise FeatureMismatch naming every row whose probability is not a number from 0 to 1:
    features that are finite one by one can still overflow the model's arithmetic."""
    bad = np.flatnonzero(~((probabilities >= 0) & (probabilities <= 1)))
    if bad.size:
        raise FeatureMismatch(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "rows", int(i), "features"),
                    "msg": "the model cannot score these features: its arithmetic overflows "
                    "(send values of the scale processing computes)",
                    "input": None,
                }
                for i in bad
            ]
        )


def online_predictions(
    manifest: PredictorManifest,
    rows: Sequence[PredictRow],
    probabilities: np.ndarray,
    *,
    threshold: float,
) -> PredictResponse:
    """The response for scored rows: one prediction per row, without a run."""
    return PredictResponse(
        model_name=manifest.name,
        model_version=manifest.version,
        horizon_days=manifest.horizon_days,
        predictions=[
            PredictionRead(
                symbol=row.symbol,
                as_of=row.as_of,
                horizon_days=manifest.horizon_days,
                prob_up=float(prob),
                signal=signal_for(float(prob), threshold=threshold),
                model_name=manifest.name,
                model_version=manifest.version,
                run_id=None,
            )
            for row, prob in zip(rows, probabilities.tolist(), strict=True)
        ],
    )
