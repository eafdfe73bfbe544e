"""Ranks within each day of a long frame, from one sort of the whole frame (no loop over days or
symbols): positions for the book and average ranks for the rank IC."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sorted_codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """Each value's position among the distinct values in ascending order."""
    return np.asarray(pd.factorize(values, sort=True)[0])


def _runs(in_order: np.ndarray, *more: np.ndarray) -> np.ndarray:
    """Run number of each row of sorted keys: it grows where any key changes."""
    starts = np.zeros(len(in_order), dtype=bool)
    starts[:1] = True
    for key in (in_order, *more):
        starts[1:] |= key[1:] != key[:-1]
    return np.cumsum(starts) - 1


def day_positions(day: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by day, then by `keys` in turn: the order, each sorted row's 0-based position
    within its day, and the number of rows of its day."""
    order = np.lexsort((*reversed(keys), day))
    run = _runs(day[order])
    first = np.flatnonzero(np.r_[True, run[1:] != run[:-1]] if len(run) else run)[run]
    return order, np.arange(len(order)) - first, np.bincount(run)[run]


def average_ranks(day: np.ndarray, values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values` within each day, tied values sharing their mean rank (as
    Spearman's correlation wants); aligned with the input."""
    order, position, _ = day_positions(day, values)
    tie = _runs(day[order], values[order])
    mean_rank = np.bincount(tie, weights=position + 1.0) / np.maximum(np.bincount(tie), 1)
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[tie]
    return ranks
