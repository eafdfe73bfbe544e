"""Ranks within each day from one sort: positions and sizes for the book, average ranks with
ties for the rank IC, equal to ranking each day on its own."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from marketsense.monitoring.ranking import average_ranks, day_positions, sorted_codes


def test_codes_follow_the_sorted_distinct_values() -> None:
    assert list(sorted_codes(np.array(["MSFT", "AAPL", "MSFT", "GOOG"]))) == [2, 0, 2, 1]


def test_positions_count_within_each_day_in_key_order() -> None:
    day = np.array([1, 0, 1, 0, 1])
    score = np.array([0.3, 0.9, 0.1, 0.2, 0.2])

    order, position, size = day_positions(day, score)

    assert list(order) == [3, 1, 2, 4, 0]
    assert list(position) == [0, 1, 0, 1, 2]
    assert list(size) == [2, 2, 3, 3, 3]


def test_a_later_key_breaks_ties_of_an_earlier_one() -> None:
    day = np.zeros(3, dtype=int)
    score = np.array([0.5, 0.5, 0.5])
    name = np.array([2, 0, 1])

    order, _, _ = day_positions(day, score, name)

    assert list(order) == [1, 2, 0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_average_ranks_equal_ranking_each_day_alone(seed: int) -> None:
    rng = np.random.default_rng(seed)
    day = rng.integers(0, 12, 400)
    values = np.round(rng.normal(0, 1, 400), 1)  # coarse, so ties are common

    ranks = average_ranks(day, values)

    for d in np.unique(day):
        np.testing.assert_allclose(ranks[day == d], stats.rankdata(values[day == d]))


def test_nothing_to_rank_gives_nothing() -> None:
    assert len(average_ranks(np.array([], dtype=int), np.array([]))) == 0
    assert all(len(a) == 0 for a in day_positions(np.array([], dtype=int), np.array([])))
