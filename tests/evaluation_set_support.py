"""Evaluation sets for tests: labelled texts and predictor rows, as the bytes an operator sends."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.parquet import to_parquet_bytes


def sentiment_csv(rows: int = 24, *, prefix: str = "text") -> bytes:
    """A `text,label` CSV cycling through the three labels."""
    labels = ("negative", "neutral", "positive")
    lines = ["text,label"] + [f"{prefix} {i},{labels[i % 3]}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def predictor_parquet(rows: int = 40, *, seed: int = 3) -> bytes:
    """A predictor set: random feature rows of one symbol on consecutive days, outcomes 0/1."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)
    frame.insert(0, "label", np.arange(rows) % 2)
    frame.insert(0, "date", [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(rows)])
    frame.insert(0, "symbol", "TEST")
    return to_parquet_bytes(frame)
