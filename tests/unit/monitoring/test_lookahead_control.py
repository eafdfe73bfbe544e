"""The control that shows the figures have no look-ahead, on the simulated market: the planted
text signal scores well, the same scores against shuffled outcomes score no better than chance,
against the session after earn nothing, and against their own session are refused."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.performance_types import WindowFigures
from marketsense.monitoring.windows import window_figures

END = dt.date(2026, 12, 2)
SYMBOLS = [f"SIM{i:02d}" for i in range(50)]
SESSIONS = 250


def resolved(market: SimulatedMarket, *, lag: int = 1) -> pd.DataFrame:
    """Each symbol's predictions over the last sessions: the score is the tone of the day's
    texts (what a perfect sentiment model reads after the close), the outcome the return
    `lag` sessions later (1: the next session, the one the text leads)."""
    parts = []
    for symbol in SYMBOLS:
        bars = market.daily_bars(symbol, as_of=END, days=SESSIONS + 2)
        tone = market.daily_tone(symbol, as_of=END, days=SESSIONS + 2).to_numpy()
        close = bars["close"].to_numpy()
        dates = bars["date"].to_numpy()
        made = np.arange(1, SESSIONS)  # sessions a prediction is made on, as indexes
        judged = made + lag  # the session whose close-to-close return judges it
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "as_of": dates[made],
                    "outcome_day": dates[judged],
                    "prob_up": 0.5 + 0.5 * tone[made],
                    "realized_return": close[judged] / close[judged - 1] - 1,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def figures(rows: pd.DataFrame) -> WindowFigures:
    """The whole history's figures, before costs (the control is about information, not cost)."""
    result = window_figures(daily_figures(rows, quantile=0.2, cost_bps=0.0), 252)
    assert result is not None
    return result


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    """One market for the module: it keeps the symbols' drawn histories."""
    return SimulatedMarket(seed=7)


@pytest.fixture(scope="module")
def real(market: SimulatedMarket) -> pd.DataFrame:
    """Predictions of the planted signal judged by the next session."""
    return resolved(market)


def shuffled(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The rows with their realised returns shuffled across symbols and days."""
    returns = np.random.default_rng(seed).permutation(rows["realized_return"].to_numpy())
    return rows.assign(realized_return=returns)


def test_the_planted_signal_scores_above_chance_with_a_sharpe_interval_above_zero(
    real: pd.DataFrame,
) -> None:
    result = figures(real)

    assert result.days == SESSIONS - 1
    assert result.accuracy is not None
    assert result.accuracy > 0.52
    assert result.rank_ic is not None
    assert result.rank_ic > 0.05
    assert result.strategy.sharpe_low is not None
    assert result.strategy.sharpe_low > 0


def test_shuffled_outcomes_score_chance_with_a_sharpe_interval_holding_zero(
    real: pd.DataFrame,
) -> None:
    result = figures(shuffled(real, seed=0))

    assert result.accuracy == pytest.approx(0.50, abs=0.02)
    assert result.strategy.sharpe_low is not None
    assert result.strategy.sharpe_high is not None
    assert result.strategy.sharpe_low < 0 < result.strategy.sharpe_high


def test_the_sharpe_interval_of_shuffled_outcomes_holds_zero_as_often_as_it_should(
    real: pd.DataFrame,
) -> None:
    # A 95% interval misses the true Sharpe ratio (0 here) about once in twenty shuffles; six
    # or more of eight holding it fails with probability under 1% if the interval is honest.
    results = [figures(shuffled(real, seed=seed)) for seed in range(1, 9)]

    held = [r.strategy.sharpe_low < 0 < r.strategy.sharpe_high for r in results]  # type: ignore[operator]
    assert sum(held) >= 6
    assert all(r.accuracy == pytest.approx(0.50, abs=0.02) for r in results)


def test_outcomes_a_session_late_earn_nothing(market: SimulatedMarket) -> None:
    # The tone leads the next session's return only: judged by the session after it, the same
    # scores are noise, so the figures follow the pairing of score and outcome day exactly.
    result = figures(resolved(market, lag=2))

    assert result.strategy.sharpe_low is not None
    assert result.strategy.sharpe_high is not None
    assert result.strategy.sharpe_low < 0 < result.strategy.sharpe_high
    assert result.rank_ic is not None
    assert abs(result.rank_ic) < 0.03


def test_a_book_on_the_return_of_the_scores_own_session_cannot_be_built(
    market: SimulatedMarket,
) -> None:
    # Judged by the session the texts came out on, the score would be dated on its outcome day:
    # it could have seen the return, and the figures refuse it.
    same_session = resolved(market, lag=0)

    with pytest.raises(ValueError, match="as_of < outcome_day"):
        daily_figures(same_session, quantile=0.2, cost_bps=0.0)
