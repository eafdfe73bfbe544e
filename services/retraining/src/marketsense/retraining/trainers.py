"""The trainer a setting names, from modelkit's table of trainers, and how it is called."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from marketsense.models.predictor import PredictorManifest


def trainer_table() -> Mapping[str, Any]:
    """modelkit's trainers by name, imported when first needed: torch is slow to import, and
    only a worker that trains needs it."""
    from marketsense.modelkit.trainers import TRAINERS

    return TRAINERS


def insufficient_data_errors() -> tuple[type[Exception], ...]:
    """The error trainers raise for a table too small or one-class (no retry gives more data)."""
    from marketsense.modelkit.training_errors import InsufficientTrainingData

    return (InsufficientTrainingData,)


def train(
    trainer: Any,
    table: pd.DataFrame,
    directory: Path,
    *,
    name: str,
    seed: int,
    training: Mapping[str, str],
) -> PredictorManifest:
    """Train with `trainer`, passing the seed to trainers that take one (torch-mlp)."""
    options: dict[str, Any] = {"name": name, "source": "stored runs", "training": dict(training)}
    if "seed" in inspect.signature(trainer).parameters:
        options["seed"] = seed
    manifest: PredictorManifest = trainer(table, directory, **options)
    return manifest
