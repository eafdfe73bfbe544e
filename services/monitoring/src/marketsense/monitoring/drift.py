"""Feature drift: each feature of a run against the served version's training reference, by the
two-sample Kolmogorov-Smirnov test (docs/monitoring.md, "Drift")."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from marketsense.common.features import FEATURE_COLUMNS
from marketsense.monitoring.performance_types import DriftFigure

MIN_VALUES = 10
"""Fewest non-missing values a feature needs in each sample to be tested; with fewer, the test
could only see a shift far larger than any the threshold means, so the feature is skipped."""


def feature_drift(
    current: pd.DataFrame, reference: pd.DataFrame, *, threshold: float, p_value: float
) -> list[DriftFigure]:
    """One figure per feature column both frames hold, in schema order: the two-sample
    Kolmogorov-Smirnov statistic and p-value of its non-missing values; drifted when the
    statistic is above `threshold` and the p-value below `p_value`. A feature with fewer than
    MIN_VALUES values in either sample is left out."""
    figures = []
    for feature in FEATURE_COLUMNS:
        if feature not in current.columns or feature not in reference.columns:
            continue
        now, then = _present(current[feature]), _present(reference[feature])
        if len(now) < MIN_VALUES or len(then) < MIN_VALUES:
            continue
        result = ks_2samp(now, then)
        statistic, p = float(result.statistic), float(result.pvalue)
        figures.append(
            DriftFigure(
                feature=feature,
                statistic=statistic,
                p_value=p,
                rows=len(now),
                reference_rows=len(then),
                drifted=statistic > threshold and p < p_value,
            )
        )
    return figures


def drift_summary(figures: list[DriftFigure]) -> str | None:
    """A one-line account of the drifted features, largest statistic first; None when none."""
    drifted = sorted((f for f in figures if f.drifted), key=lambda f: -f.statistic)
    if not drifted:
        return None
    listed = ", ".join(f"{f.feature} (KS {f.statistic:.2f}, p {f.p_value:.1e})" for f in drifted)
    return f"{len(drifted)} of {len(figures)} features drifted from the reference: {listed}"


def _present(values: pd.Series) -> np.ndarray:
    """The finite values of a column as float64; NaN is a missing value, not a number to test."""
    numbers = values.to_numpy(np.float64)
    present: np.ndarray = numbers[np.isfinite(numbers)]
    return present
