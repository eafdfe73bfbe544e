"""The story's books: the perfect-knowledge model on the simulated market with its flip, the
production book spliced from the versions that served, and the spans' Sharpe ratios."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketsense.cli.story_figures import (
    SPANS,
    book_returns,
    perfect_resolved,
    production_returns,
    span_days,
    span_sharpes,
)
from marketsense.cli.story_plan import story_plan
from marketsense.common.calendar import exchange_calendar
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.returns_stats import sharpe_ratio

SESSIONS = tuple(exchange_calendar().sessions(dt.date(2025, 3, 3), dt.date(2025, 6, 30)))
SYMBOLS = [f"S{i:02d}" for i in range(20)]
FLIP = 40


def _market(flip: dt.date | None) -> SimulatedMarket:
    return SimulatedMarket(seed=11, regime_change=flip, regime_signal_factor=-1.0)


def test_the_perfect_score_is_the_tone_times_the_next_days_sign_and_close_to_close() -> None:
    flip_day = SESSIONS[FLIP]
    market = _market(flip_day)
    resolved = perfect_resolved(market, ["ACME"], SESSIONS)

    tone = market.daily_tone("ACME", as_of=SESSIONS[-1], days=len(SESSIONS))
    close = market.daily_bars("ACME", as_of=SESSIONS[-1], days=len(SESSIONS))["close"].to_numpy()
    assert list(resolved["as_of"]) == list(SESSIONS[:-1])
    assert list(resolved["outcome_day"]) == list(SESSIONS[1:])
    score = 2 * (resolved["prob_up"].to_numpy() - 0.5)
    before, after = resolved["outcome_day"] <= flip_day, resolved["outcome_day"] > flip_day
    assert np.allclose(score[before], tone.to_numpy()[:-1][before])
    assert np.allclose(score[after], -tone.to_numpy()[:-1][after])
    assert np.allclose(resolved["realized_return"], close[1:] / close[:-1] - 1)


def test_knowing_the_regime_earns_on_both_sides_of_the_flip_and_ignoring_it_loses_after() -> None:
    flip_day = SESSIONS[FLIP]
    market = _market(flip_day)
    perfect = book_returns(perfect_resolved(market, SYMBOLS, SESSIONS))
    # The same tones read as if nothing had flipped: scored by a market without the flip.
    unaware = perfect_resolved(_market(None), SYMBOLS, SESSIONS)
    unaware["realized_return"] = perfect_resolved(market, SYMBOLS, SESSIONS)["realized_return"]
    naive = book_returns(unaware)

    before = [d for d in perfect.index if d <= flip_day]
    after = [d for d in perfect.index if d > flip_day]
    perfect_before = sharpe_ratio(perfect.loc[before].to_numpy())
    perfect_after = sharpe_ratio(perfect.loc[after].to_numpy())
    naive_after = sharpe_ratio(naive.loc[after].to_numpy())
    assert perfect_before is not None
    assert perfect_before > 2
    assert perfect_after is not None
    assert perfect_after > 2
    assert naive_after is not None
    assert naive_after < 0
    assert np.allclose(naive.loc[before], perfect.loc[before])


def test_the_production_book_takes_each_day_from_the_version_that_served_the_day_before() -> None:
    days = SESSIONS[:6]
    daily = {
        "1": pd.Series([0.01, 0.02, 0.03, 0.04, 0.05], index=days[1:]),
        "2": pd.Series([-0.01, -0.02, -0.03, -0.04, -0.05], index=days[1:]),
    }
    served = {days[0]: "1", days[1]: "1", days[2]: "2", days[3]: "2", days[4]: "3"}

    spliced = production_returns(served, daily, days)

    # as_of days[4] served version 3, which has no figures: that outcome day is left out.
    assert list(spliced.index) == list(days[1:5])
    assert list(spliced) == [0.01, 0.02, -0.03, -0.04]


def test_the_spans_split_the_outcome_days_at_the_flip_and_at_the_first_serving_session() -> None:
    plan = story_plan(list(SESSIONS), first_backfill=30, flip=FLIP)

    spans = span_days(plan, serving_from=55)
    never = span_days(plan, serving_from=None)

    assert spans[SPANS[0]] == list(SESSIONS[1 : FLIP + 1])
    assert spans[SPANS[1]] == list(SESSIONS[FLIP + 1 : 56])
    assert spans[SPANS[2]] == list(SESSIONS[56:])
    assert sum(len(v) for v in spans.values()) == len(SESSIONS) - 1
    assert never[SPANS[1]] == list(SESSIONS[FLIP + 1 :])
    assert never[SPANS[2]] == []


def test_span_sharpes_use_only_days_both_books_have() -> None:
    rng = np.random.default_rng(5)
    days = list(SESSIONS[:40])
    production = pd.Series(rng.normal(0.001, 0.01, 40), index=days).drop(days[3])
    perfect = pd.Series(rng.normal(0.003, 0.01, 40), index=days)

    first, empty = span_sharpes(production, perfect, {"a": days[:20], "b": []})

    held = [d for d in days[:20] if d != days[3]]
    assert first.days == 19
    assert first.production == pytest.approx(sharpe_ratio(production.reindex(held).to_numpy()))
    assert first.perfect == pytest.approx(sharpe_ratio(perfect.reindex(held).to_numpy()))
    assert (empty.days, empty.production, empty.perfect) == (0, None, None)
