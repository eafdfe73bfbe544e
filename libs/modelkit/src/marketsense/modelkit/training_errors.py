"""Why a training table cannot give a predictor, and the check every trainer makes first."""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_TRAINING_ROWS = 300
"""Fewest rows a trainer accepts: below this the held-out metrics are noise."""

MIN_HOLDOUT_DATES = 2
"""Fewest distinct dates the held-out share must span. Low on purpose: a challenger retrained
after a regime change has only the days since it (ten, say), and its held-out figures are
claims the registry measures again on its own evaluation set anyway."""


class InsufficientTrainingData(ValueError):
    """The training table is too small or has one label class; the message says which."""


def holdout_cutoff(table: pd.DataFrame, share: float) -> object:
    """The first held-out date: the latest `share` of distinct dates are held out.

    Raises InsufficientTrainingData when the table cannot be trained and judged on.
    """
    if len(table) < MIN_TRAINING_ROWS:
        raise InsufficientTrainingData(
            f"the training table has {len(table)} rows; a predictor needs at least "
            f"{MIN_TRAINING_ROWS}"
        )
    classes = sorted(pd.unique(table["label"].astype(int)))
    if len(classes) < 2:
        raise InsufficientTrainingData(
            f"every label in the training table is {classes[0]}; a predictor needs both up "
            "and down days"
        )
    dates = np.sort(table["date"].unique())
    index = int(len(dates) * (1 - share))
    held_out = len(dates) - index
    if held_out < MIN_HOLDOUT_DATES:
        raise InsufficientTrainingData(
            f"the training table spans {len(dates)} dates, {held_out} of them held out; the "
            f"holdout needs at least {MIN_HOLDOUT_DATES}"
        )
    cutoff: object = dates[index]
    parts = {"training days": table["date"] < cutoff, "held-out days": table["date"] >= cutoff}
    for part, rows in parts.items():
        if table.loc[rows, "label"].astype(int).nunique() < 2:
            raise InsufficientTrainingData(
                f"the {part} have one label class; a predictor needs both up and down days"
            )
    return cutoff
