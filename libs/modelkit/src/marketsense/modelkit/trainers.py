"""The predictor trainers by name: what a retraining request or a command line chooses from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import pandas as pd

from marketsense.modelkit.baseline import train_logistic
from marketsense.modelkit.torch_predictor import train_torch_predictor
from marketsense.models.predictor import PredictorManifest


class Trainer(Protocol):
    """Train a predictor bundle into `directory` from a training table (as `training_table`
    returns); InsufficientTrainingData when the table cannot give one."""

    def __call__(
        self,
        table: pd.DataFrame,
        directory: Path,
        *,
        name: str,
        version: str = "1",
        source: str,
        training: Mapping[str, str] | None = None,
    ) -> PredictorManifest: ...


TRAINERS: dict[str, Trainer] = {
    "torch-mlp": train_torch_predictor,
    "logistic": train_logistic,
}
"""Every trainer by the name `training["trainer"]` records; torch-mlp takes a `seed` too."""
