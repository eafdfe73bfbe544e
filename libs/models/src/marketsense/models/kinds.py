"""The kinds of model the registry holds and the metric each kind is judged by."""

from __future__ import annotations

from typing import Literal

ModelKind = Literal["sentiment", "predictor"]
"""What a model does: scores headlines and posts (sentiment) or predicts moves (predictor)."""

KINDS: tuple[ModelKind, ...] = ("sentiment", "predictor")
"""Every kind, in the order people are shown them."""

PRIMARY_METRIC: dict[ModelKind, str] = {
    "predictor": "holdout_auc",
    "sentiment": "heldout_macro_f1",
}
"""The metric the production gate compares, per kind (higher is better)."""


def as_kind(value: str) -> ModelKind:
    """A stored or typed kind as the literal type; ValueError for anything else."""
    if value == "predictor":
        return "predictor"
    if value == "sentiment":
        return "sentiment"
    raise ValueError(f"model kind {value!r} is neither predictor nor sentiment")


Variant = Literal["fp32", "int8"]
"""A graph of a version a service can serve: the fp32 graph or, for sentiment, the int8 one."""
