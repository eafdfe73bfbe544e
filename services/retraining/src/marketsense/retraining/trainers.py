"""The trainer a setting names, from modelkit's table of trainers, and the error a trainer
raises for data it cannot learn from."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

import pandas as pd

from marketsense.models.predictor import PredictorManifest

Trainer = Callable[..., PredictorManifest]
"""`trainer(table, directory, *, name, source, training[, seed]) -> PredictorManifest`."""

TRAINERS_MODULE = "marketsense.modelkit.trainers"
ERRORS_MODULE = "marketsense.modelkit.training_errors"


class TrainerUnavailable(RuntimeError):
    """The configured trainer is not in this installation."""


def trainer_table() -> Mapping[str, Trainer]:
    """modelkit's trainers by name (loaded when first needed: torch is slow to import)."""
    try:
        module = importlib.import_module(TRAINERS_MODULE)
    except ImportError as exc:
        raise TrainerUnavailable(
            f"{TRAINERS_MODULE} cannot be imported ({exc}): install marketsense-modelkit"
        ) from exc
    return cast(Mapping[str, Trainer], module.TRAINERS)


def insufficient_data_errors() -> tuple[type[Exception], ...]:
    """The error trainers raise for a table too small or one-class (no retry gives more data)."""
    try:
        module = importlib.import_module(ERRORS_MODULE)
    except ImportError:
        return ()
    return (cast(type[Exception], module.InsufficientTrainingData),)


def train(
    trainer: Trainer,
    table: pd.DataFrame,
    directory: Path,
    *,
    name: str,
    seed: int,
    training: Mapping[str, str],
) -> PredictorManifest:
    """Train with `trainer`, passing the seed to trainers that take one."""
    options: dict[str, Any] = {"name": name, "source": "stored runs", "training": dict(training)}
    if "seed" in inspect.signature(trainer).parameters:
        options["seed"] = seed
    return trainer(table, directory, **options)
