"""The long-short book: legs of the top and bottom scores, equal weights of half the capital
each, ties broken by symbol, and the turnover from one day's book to the next."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketsense.monitoring.book import book_weights, leg_sizes, turnover

MON, TUE, WED, THU = (dt.date(2026, 11, d) for d in (16, 17, 18, 19))


def rows(*days: tuple[dt.date, dict[str, float]]) -> pd.DataFrame:
    """Book inputs: for each day, the symbols' scores."""
    return pd.DataFrame(
        [
            {"day": day, "symbol": symbol, "prob_up": score}
            for day, scores in days
            for symbol, score in scores.items()
        ]
    )


def weights_by_symbol(frame: pd.DataFrame, quantile: float) -> dict[tuple[dt.date, str], float]:
    """The book's non-zero weights keyed by (day, symbol)."""
    w = book_weights(frame, quantile=quantile)
    return {
        (d, s): float(x) for d, s, x in zip(frame["day"], frame["symbol"], w, strict=True) if x != 0
    }


@pytest.mark.parametrize(
    ("symbols", "quantile", "legs"),
    [(50, 0.2, 10), (100, 0.29, 29), (30, 0.1, 3), (4, 0.2, 0), (5, 0.2, 1), (7, 0.5, 3)],
)
def test_each_leg_is_the_quantile_share_rounded_down(
    symbols: int, quantile: float, legs: int
) -> None:
    assert leg_sizes(np.array([symbols]), quantile)[0] == legs


def test_the_book_buys_the_top_and_sells_the_bottom_with_half_the_capital_each() -> None:
    frame = rows(
        (MON, {"A": 0.9, "B": 0.2, "C": 0.55, "D": 0.7, "E": 0.4, "F": 0.1, "G": 0.6, "H": 0.3}),
    )

    assert weights_by_symbol(frame, 0.25) == {
        (MON, "A"): 0.25,
        (MON, "D"): 0.25,
        (MON, "F"): -0.25,
        (MON, "B"): -0.25,
    }


def test_each_day_has_its_own_book() -> None:
    frame = rows((MON, {"A": 0.9, "B": 0.1, "C": 0.5}), (TUE, {"A": 0.1, "B": 0.9, "C": 0.5}))

    assert weights_by_symbol(frame, 0.34) == {
        (MON, "A"): 0.5,
        (MON, "B"): -0.5,
        (TUE, "B"): 0.5,
        (TUE, "A"): -0.5,
    }


def test_ties_on_the_cut_go_by_symbol_name_whatever_the_row_order() -> None:
    frame = rows((MON, {"D": 0.5, "B": 0.5, "A": 0.5, "C": 0.5, "E": 0.5, "F": 0.5}))
    reordered = frame.sample(frac=1.0, random_state=3)

    # Sorted by score then name, the first names are the bottom and the last the top.
    expected = {(MON, "A"): -0.5, (MON, "E"): 0.0, (MON, "F"): 0.5}
    for case in (frame, reordered):
        got = weights_by_symbol(case, 1 / 6)
        assert got == {k: v for k, v in expected.items() if v}


def test_a_day_too_small_for_one_name_a_leg_holds_nothing() -> None:
    frame = rows((MON, {"A": 0.9, "B": 0.1, "C": 0.5, "D": 0.4}))

    assert weights_by_symbol(frame, 0.2) == {}


def test_the_weights_follow_the_rows_they_were_given() -> None:
    frame = rows((MON, {"A": 0.9, "B": 0.1}), (TUE, {"A": 0.2, "B": 0.8}))
    frame.index = pd.Index([10, 3, 7, 1])

    w = book_weights(frame, quantile=0.5)

    assert list(w.index) == [10, 3, 7, 1]
    assert list(w) == [0.5, -0.5, -0.5, 0.5]


def turnover_of(frame: pd.DataFrame, quantile: float) -> list[float]:
    """Each day's turnover, in day order."""
    days = pd.Index(sorted(frame["day"].unique()))
    return list(turnover(frame, book_weights(frame, quantile=quantile), days))


def test_turnover_counts_the_build_up_then_only_what_changed() -> None:
    frame = rows(
        (MON, {"A": 0.9, "B": 0.1, "C": 0.5}),
        (TUE, {"A": 0.8, "B": 0.2, "C": 0.5}),  # the same book: nothing traded
        (WED, {"A": 0.1, "B": 0.9, "C": 0.5}),  # reversed: each name from +0.5 to -0.5
        (THU, {"C": 0.9, "B": 0.7, "A": 0.2}),  # A stays short; B sold, C bought
    )

    assert turnover_of(frame, 0.34) == pytest.approx([1.0, 0.0, 2.0, 1.0])


def test_a_name_leaving_the_universe_is_sold_and_a_new_one_bought() -> None:
    frame = rows(
        (MON, {"A": 0.9, "B": 0.1, "C": 0.5}),
        (TUE, {"D": 0.9, "B": 0.1, "C": 0.5}),
    )

    assert turnover_of(frame, 0.34) == pytest.approx([1.0, 1.0])


def test_turnover_after_a_day_without_a_book_is_the_full_build_up() -> None:
    frame = rows(
        (MON, {"A": 0.9, "B": 0.1}),
        (TUE, {"A": 0.9}),  # one symbol: no book, everything sold
        (WED, {"A": 0.9, "B": 0.1}),
    )

    assert turnover_of(frame, 0.5) == pytest.approx([1.0, 1.0, 1.0])
