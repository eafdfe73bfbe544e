"""The challenge's verdict from two versions' daily figures: wins and losses by the margin,
over the first shared outcome days only, and undefined Sharpe ratios."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from marketsense.monitoring.challenge_decision import Verdict, beats, judge_challenge, shared_days
from marketsense.monitoring.returns_stats import sharpe_ratio

START = dt.date(2026, 6, 1)


def daily(returns: list[float] | np.ndarray, *, offset: int = 0) -> pd.DataFrame:
    """A daily frame (index `day`) of strategy returns, from START + offset days."""
    days = [START + dt.timedelta(days=offset + i) for i in range(len(returns))]
    return pd.DataFrame({"strategy_return": list(returns)}, index=pd.Index(days, name="day"))


def book(mean: float, *, seed: int, days: int = 12) -> np.ndarray:
    """Daily returns of a book with the given mean and 1% daily volatility."""
    return np.random.default_rng(seed).normal(mean, 0.01, days)


def test_a_better_challenger_wins_over_the_first_shared_days_only() -> None:
    champion = daily(book(-0.002, seed=1, days=15))
    # Starts two days later; its days after the tenth shared one are disastrous and must not count.
    challenger_returns = np.concatenate([book(0.004, seed=2, days=10), [-0.5, -0.5, -0.5]])
    challenger = daily(challenger_returns, offset=2)

    figures = judge_challenge(champion, challenger, needed=10, margin=0.5)

    compared = [START + dt.timedelta(days=2 + i) for i in range(10)]
    assert figures.verdict is Verdict.WIN
    assert (figures.days, figures.started_on, list(figures.compared)) == (13, compared[0], compared)
    ours = sharpe_ratio(champion["strategy_return"].reindex(compared).to_numpy())
    theirs = sharpe_ratio(challenger_returns[:10])
    assert figures.champion_sharpe == pytest.approx(ours)
    assert figures.challenger_sharpe == pytest.approx(theirs)
    assert theirs is not None
    assert ours is not None
    assert theirs - ours >= 0.5
    assert f"{theirs:.2f} beats champion Sharpe {ours:.2f}" in figures.reason


def test_a_worse_challenger_loses() -> None:
    figures = judge_challenge(
        daily(book(0.003, seed=3)), daily(book(-0.003, seed=4)), needed=10, margin=0.5
    )

    assert figures.verdict is Verdict.LOSE
    assert "does not beat" in figures.reason


def test_too_few_shared_days_decide_nothing_yet() -> None:
    champion = daily(book(0.0, seed=5, days=12))
    challenger = daily(book(0.01, seed=6, days=12), offset=5)  # 7 days in common

    figures = judge_challenge(champion, challenger, needed=10, margin=0.5)

    assert figures.verdict is Verdict.PENDING
    assert (figures.days, figures.started_on) == (7, START + dt.timedelta(days=5))
    assert figures.champion_sharpe is None
    assert figures.challenger_sharpe is None
    assert figures.reason == "7 of 10 shared outcome days so far"
    assert shared_days(champion, challenger)[0] == START + dt.timedelta(days=5)


def test_a_challenger_beating_by_exactly_the_margin_wins_and_by_less_loses() -> None:
    assert beats(1.0, 1.5, margin=0.5)
    assert not beats(1.0, 1.4999, margin=0.5)
    assert beats(-0.25, 0.25, margin=0.5)


def test_an_undefined_challenger_sharpe_never_wins_and_an_undefined_champion_counts_as_zero() -> (
    None
):
    flat = daily([0.001] * 10)  # no dispersion: Sharpe undefined
    good = daily(book(0.004, seed=7, days=10))

    lost = judge_challenge(good, flat, needed=10, margin=0.0)
    won = judge_challenge(flat, good, needed=10, margin=0.5)

    assert lost.verdict is Verdict.LOSE
    assert lost.challenger_sharpe is None
    assert "challenger Sharpe undefined" in lost.reason
    assert won.champion_sharpe is None
    assert won.challenger_sharpe is not None
    assert math.isfinite(won.challenger_sharpe)
    assert won.challenger_sharpe > 0.5
    assert won.verdict is Verdict.WIN
    assert not beats(None, None, margin=0.0)
