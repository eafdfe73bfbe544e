"""Champion against challenger, decided from two versions' daily figures: each version's
annualised Sharpe of the book's daily return over the same outcome days, the challenger
winning only by at least a margin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd

from marketsense.monitoring.returns_stats import sharpe_ratio

RETURN_COLUMN = "strategy_return"
"""The daily figure compared: the long-short book's return after costs."""


class Verdict(StrEnum):
    """Where a challenge stands after the figures are read."""

    PENDING = "pending"
    """Fewer shared outcome days than the challenge needs."""
    WIN = "win"
    """The challenger's Sharpe beats the champion's by at least the margin."""
    LOSE = "lose"
    """It does not."""


@dataclass(frozen=True)
class ChallengeFigures:
    """What two versions' daily figures say about a challenge."""

    verdict: Verdict
    days: int
    """Outcome days on which both versions have figures (all of them, not only the compared)."""
    started_on: dt.date | None
    """First of those days."""
    compared: tuple[dt.date, ...]
    """The days the Sharpe ratios are measured over: the first `needed` shared days."""
    champion_sharpe: float | None
    challenger_sharpe: float | None
    reason: str


def shared_days(champion: pd.DataFrame, challenger: pd.DataFrame) -> list[dt.date]:
    """Outcome days, ascending, on which both daily frames (index `day`) have a row."""
    return sorted(set(champion.index) & set(challenger.index))


def beats(champion: float | None, challenger: float | None, *, margin: float) -> bool:
    """Whether a challenger's Sharpe beats the champion's by at least `margin`: an undefined
    challenger Sharpe never does; an undefined champion Sharpe (a book without dispersion)
    counts as 0."""
    if challenger is None:
        return False
    # A tolerance of rounding: a difference equal to the margin on paper wins.
    return challenger - (champion or 0.0) >= margin - 1e-9


def judge_challenge(
    champion: pd.DataFrame, challenger: pd.DataFrame, *, needed: int, margin: float
) -> ChallengeFigures:
    """The verdict on a challenger from both versions' daily frames (index `day`, with
    `strategy_return`), over the first `needed` outcome days they share."""
    days = shared_days(champion, challenger)
    started = days[0] if days else None
    if len(days) < needed:
        return ChallengeFigures(
            Verdict.PENDING,
            len(days),
            started,
            (),
            None,
            None,
            f"{len(days)} of {needed} shared outcome days so far",
        )
    compared = days[:needed]
    ours = sharpe_ratio(champion[RETURN_COLUMN].reindex(compared).to_numpy(float))
    theirs = sharpe_ratio(challenger[RETURN_COLUMN].reindex(compared).to_numpy(float))
    won = beats(ours, theirs, margin=margin)
    verb = "beats" if won else "does not beat"
    reason = (
        f"challenger Sharpe {_shown(theirs)} {verb} champion Sharpe {_shown(ours)} by the "
        f"margin {margin:.2f} over {needed} shared outcome days {compared[0]}..{compared[-1]}"
    )
    return ChallengeFigures(
        Verdict.WIN if won else Verdict.LOSE,
        len(days),
        started,
        tuple(compared),
        ours,
        theirs,
        reason,
    )


def _shown(sharpe: float | None) -> str:
    return "undefined" if sharpe is None else f"{sharpe:.2f}"
