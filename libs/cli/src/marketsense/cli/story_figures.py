"""The story's Sharpe ratios: the production book's, spliced from the versions that served, and
the perfect-knowledge book's on the same days, over the spans before the flip, between the flip
and the retrained model serving, and after."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketsense.cli.story_plan import StoryPlan
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.figures import daily_figures
from marketsense.monitoring.returns_stats import sharpe_ratio

BOOK_QUANTILE = 0.2
"""Share of the universe each leg of the book holds: monitoring's default."""

BOOK_COST_BPS = 5.0
"""Trading cost per unit of turnover: monitoring's default."""

SPANS = ("before the flip", "flip to serving", "after serving")
"""The three spans the story judges, in time order."""


@dataclass(frozen=True)
class SpanSharpe:
    """The production and perfect-knowledge Sharpe ratios over one span of outcome days."""

    span: str
    days: int
    production: float | None
    perfect: float | None


def perfect_resolved(
    market: SimulatedMarket, symbols: list[str], sessions: tuple[dt.date, ...]
) -> pd.DataFrame:
    """What a model knowing the true tone and the regime would have said each session: for as_of
    t, the tone of t's texts times the sign the texts' lead has on t+1's return, with t+1's
    realised return (close to close, as monitoring resolves outcomes)."""
    last, days = sessions[-1], len(sessions)
    made, outcome = list(sessions[:-1]), list(sessions[1:])
    sign = np.ones(len(outcome))
    if market.regime_change is not None:
        flipped = [day > market.regime_change for day in outcome]
        sign[np.array(flipped, dtype=bool)] = market.regime_signal_factor
    frames = []
    for symbol in symbols:
        tone = market.daily_tone(symbol, as_of=last, days=days).reindex(made).to_numpy()
        bars = market.daily_bars(symbol, as_of=last, days=days)
        close = pd.Series(bars["close"].to_numpy(dtype=float), index=list(bars["date"]))
        closes = close.reindex(list(sessions)).to_numpy()
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "as_of": made,
                    "outcome_day": outcome,
                    "prob_up": np.clip(0.5 + 0.5 * tone * sign, 0.0, 1.0),
                    "realized_return": closes[1:] / closes[:-1] - 1.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def book_returns(resolved: pd.DataFrame) -> pd.Series:
    """The long-short book's daily return after costs (index: outcome day), as monitoring books
    it."""
    figures = daily_figures(resolved, quantile=BOOK_QUANTILE, cost_bps=BOOK_COST_BPS)
    returns: pd.Series = figures["strategy_return"]
    return returns


def production_returns(
    serving: Mapping[dt.date, str],
    daily: Mapping[str, pd.Series],
    sessions: tuple[dt.date, ...],
) -> pd.Series:
    """The book of the predictions production made: for each outcome day, the return of the
    version that served on the session before it. `serving` maps as_of sessions to the version
    production answered with; `daily` each version's strategy returns by outcome day. Days
    without a serving version or without that version's figure are left out."""
    values: dict[dt.date, float] = {}
    for as_of, outcome in itertools.pairwise(sessions):
        version = serving.get(as_of)
        series = daily.get(version) if version is not None else None
        if series is not None and outcome in series.index:
            value = float(series.loc[outcome])
            if np.isfinite(value):
                values[outcome] = value
    return pd.Series(values, dtype=float).sort_index()


def span_days(plan: StoryPlan, serving_from: int | None) -> dict[str, list[dt.date]]:
    """The outcome days of each span. Before the flip: outcomes up to the flip day. Between:
    the outcomes the flip changed, up to the retrained model's first serving session (all the
    rest when it never served). After: outcomes of the predictions it made."""
    sessions, flip = plan.sessions, plan.flip
    turn = len(sessions) - 1 if serving_from is None else serving_from
    return {
        SPANS[0]: list(sessions[1 : flip + 1]),
        SPANS[1]: list(sessions[flip + 1 : turn + 1]),
        SPANS[2]: list(sessions[turn + 1 :]) if serving_from is not None else [],
    }


def span_sharpes(
    production: pd.Series, perfect: pd.Series, spans: Mapping[str, list[dt.date]]
) -> list[SpanSharpe]:
    """Both books' Sharpe over each span's days that production has a return for."""
    out = []
    for name, days in spans.items():
        held = [d for d in days if d in production.index and d in perfect.index]
        out.append(
            SpanSharpe(
                span=name,
                days=len(held),
                production=_sharpe(production, held),
                perfect=_sharpe(perfect, held),
            )
        )
    return out


def _sharpe(returns: pd.Series, days: list[dt.date]) -> float | None:
    """Annualised Sharpe of the returns on `days`; None with fewer than two."""
    if len(days) < 2:
        return None
    return sharpe_ratio(returns.reindex(days).to_numpy(dtype=float))
