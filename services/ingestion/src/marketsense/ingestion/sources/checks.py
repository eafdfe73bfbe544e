"""Checks of clean bars that real data needs: each finding is a note on the ingest task.

Cleaning makes every row valid on its own; these look at the rows together, against the
exchange calendar and the run's day, for what would make features silently wrong: unadjusted
splits and other jumps, sessions without a bar, prices that stopped moving, volume that is zero
or constant, and a last bar older than the run's day. A real earnings jump must still be
scored, so the note says what to distrust instead; only a suspected split that the run's
features would still feel fails the symbol (`BarChecks.refuse_unadjusted_split`), because every
feature of the run's day would be wrong.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from marketsense.common.calendar import ExchangeCalendar, exchange_calendar
from marketsense.ingestion.sources.base import SourceRejected

MAD_TO_SIGMA = 1.4826
"""Scales a median absolute deviation to a normal distribution's standard deviation."""

MIN_RETURNS_FOR_JUMPS = 10
"""Daily moves needed before one of them can be told apart from the others."""

MAX_JUMP_NOTES = 5
"""Jumps noted one by one at most; more are counted in one further note."""

SPLIT_RATIO_TOLERANCE = 0.03
"""Log distance of a move from a whole split ratio that still suggests a split, at least."""

SPLIT_REFUSAL_TOLERANCE = 0.05
"""Log distance within which a move counts as a split for failing the symbol, however volatile
the stock: the split day's own move (up to about 5%) on top of the ratio, not a volatile day."""

SPLIT_FELT_SESSIONS = 120
"""Last bars up to the run's day in which an unadjusted split still moves that day's features:
the 20-session returns, volatility and volume z-score see it directly, and Wilder's RSI and the
MACD averages carry it much longer (measured on real prices: a 10-for-1 split 60 sessions back
still takes RSI from 37 to 29 and triples MACD; 120 sessions back it moves MACD by 2%)."""


@dataclass(frozen=True)
class CheckLimits:
    """Thresholds of the bar checks."""

    jump_deviations: float = 10.0
    """A close-to-close log move beyond this many robust deviations of the symbol's daily
    moves (median absolute deviation, scaled to a standard deviation) is noted as a jump."""
    flat_sessions: int = 5
    """The last this many sessions with unchanged prices are noted as flat."""
    volume_sessions: int = 20
    """Sessions at the end of the bars whose volume is checked for zeros and constancy."""


@dataclass(frozen=True)
class BarChecks:
    """The checks of one exchange's bars, with their thresholds."""

    calendar: ExchangeCalendar = field(default_factory=exchange_calendar)
    """Sessions that should each have a bar."""
    limits: CheckLimits = field(default_factory=CheckLimits)
    """Thresholds."""
    fail_on_split: bool = True
    """Fail a symbol whose bars show a suspected split the run's features would feel; when
    false, it is only noted."""

    def __call__(self, bars: pd.DataFrame, *, symbol: str, as_of: dt.date) -> list[str]:
        """One note per finding in clean, sorted bars (dates as `datetime.date`) for `as_of`."""
        if bars.empty:
            return []
        notes = [
            *jumps(bars, limit=self.limits.jump_deviations),
            *flat_prices(bars, sessions=self.limits.flat_sessions),
            *volume(bars, sessions=self.limits.volume_sessions),
        ]
        try:
            notes += [
                *gaps(bars, calendar=self.calendar),
                *stale(bars, as_of=as_of, calendar=self.calendar),
            ]
        except ValueError as exc:  # days the calendar does not cover
            notes.append(f"gaps and staleness not checked: {exc}")
        return [f"{symbol}: {note}" for note in notes]

    def refuse_unadjusted_split(self, bars: pd.DataFrame, *, symbol: str) -> None:
        """Raise SourceRejected for the latest suspected split in the last SPLIT_FELT_SESSIONS
        bars (clean, sorted, ending at the run's day), unless `fail_on_split` is off."""
        if not self.fail_on_split or bars.empty:
            return
        felt = len(bars) - SPLIT_FELT_SESSIONS
        for jump in find_jumps(bars, limit=self.limits.jump_deviations):
            # Failing a symbol needs the ratio itself to be a split's: a volatile stock's noise
            # widens the note's guess, and a 40% day is not a 3-for-2 split.
            if jump.split and jump.exact_split and jump.index >= felt:
                before = _sessions(len(bars) - jump.index - 1)
                raise SourceRejected(
                    f"{symbol}: prices look unadjusted for {jump.split} on "
                    f"{jump.day.isoformat()} (close x{jump.ratio:.3f}), {before} before the "
                    "run's day: its returns, volatility, RSI and MACD would be wrong; supply "
                    "split-adjusted prices (or set check_fail_on_split to false to score them "
                    "anyway)"
                )


@dataclass(frozen=True)
class Jump:
    """One close-to-close move beyond the jump limit."""

    index: int
    """Position in the bars of the first bar after the move."""
    day: dt.date
    ratio: float
    """Close after the move over close before."""
    deviations: float
    """Size of the move in robust deviations of the symbol's daily moves."""
    split: str
    """The split the ratio suggests (`a 10-for-1 split`), or empty."""
    exact_split: bool
    """Whether the ratio is within SPLIT_REFUSAL_TOLERANCE of that split's, whatever the noise."""


def find_jumps(bars: pd.DataFrame, *, limit: float) -> list[Jump]:
    """Close-to-close moves beyond `limit` robust deviations, most recent first."""
    close = bars["close"].to_numpy(dtype="float64")
    moves = np.diff(np.log(close))
    if len(moves) < MIN_RETURNS_FOR_JUMPS:
        return []
    centre = float(np.median(moves))
    spread = float(np.median(np.abs(moves - centre))) * MAD_TO_SIGMA
    if spread == 0:
        return []  # prices mostly flat: the flat check says so
    deviations = np.abs(moves - centre) / spread
    days = bars["date"].to_numpy()
    return [
        Jump(
            index=int(i) + 1,
            day=days[i + 1],
            ratio=float(close[i + 1] / close[i]),
            deviations=float(deviations[i]),
            split=_split_guess(float(close[i + 1] / close[i]), spread=spread),
            exact_split=bool(
                _split_guess(
                    float(close[i + 1] / close[i]), spread=0.0, least=SPLIT_REFUSAL_TOLERANCE
                )
            ),
        )
        for i in np.flatnonzero(deviations > limit)[::-1]
    ]


def jumps(bars: pd.DataFrame, *, limit: float) -> list[str]:
    """Close-to-close moves beyond `limit` robust deviations, with their ratio and day."""
    found = find_jumps(bars, limit=limit)
    felt = len(bars) - SPLIT_FELT_SESSIONS
    notes = []
    for jump in found[:MAX_JUMP_NOTES]:
        guess = f" ({jump.split}?)" if jump.split else ""
        since = (
            "; the run's features no longer feel it, but the stored history stays unadjusted"
            if jump.split and jump.index < felt
            else ""
        )
        notes.append(
            f"{jump.day.isoformat()}: close moved x{jump.ratio:.3f}{guess}, "
            f"{jump.deviations:.0f} robust deviations of its daily moves; prices are not "
            "split-adjusted, so returns and indicators across this day treat it as a real move"
            f"{since}"
        )
    if len(found) > MAX_JUMP_NOTES:
        notes.append(f"{len(found) - MAX_JUMP_NOTES} more jumps beyond {limit:g} robust deviations")
    return notes


SPLIT_FACTORS: tuple[tuple[float, str], ...] = (
    (1.5, "3-for-2"),
    *((float(k), f"{k}-for-1") for k in range(2, 51)),
)
"""Usual split ratios (new shares per old share) and their names."""


def _split_guess(ratio: float, *, spread: float, least: float = SPLIT_RATIO_TOLERANCE) -> str:
    """`a 10-for-1 split` when a move is close to a usual split's ratio, else nothing.

    Close means within the day's own noise: three robust deviations, or `least` at least.
    """
    tolerance = max(least, 3 * spread)
    moved = float(np.log(ratio))
    factor, name = min(SPLIT_FACTORS, key=lambda item: abs(abs(moved) - np.log(item[0])))
    if abs(abs(moved) - np.log(factor)) > tolerance:
        return ""
    if moved < 0:
        return f"a {name} split"
    new, old = name.split("-for-")
    return f"a {old}-for-{new} reverse split"


def gaps(bars: pd.DataFrame, *, calendar: ExchangeCalendar) -> list[str]:
    """Sessions between the first and last bar that have no bar, and the longest run of them."""
    first, last = bars["date"].iloc[0], bars["date"].iloc[-1]
    if first >= last:
        return []
    sessions = calendar.sessions(first, last)
    have = set(bars["date"])
    missing = [i for i, day in enumerate(sessions) if day not in have]
    if not missing:
        return []
    runs: list[tuple[int, int]] = []  # (first index, last index) of consecutive missing sessions
    for i in missing:
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    start, end = max(runs, key=lambda run: (run[1] - run[0], run[0]))
    longest = end - start + 1
    count = len(missing)
    return [
        f"{_sessions(count)} from {first.isoformat()} to {last.isoformat()} have no bar; "
        f"the longest gap is {_sessions(longest)}, {sessions[start].isoformat()} to "
        f"{sessions[end].isoformat()}; a one-day return across a gap spans several sessions"
    ]


def flat_prices(bars: pd.DataFrame, *, sessions: int) -> list[str]:
    """Prices flat over the whole window, or unchanged over the last `sessions` bars or more."""
    close = bars["close"].to_numpy(dtype="float64")
    if len(close) < 2:
        return []
    days = bars["date"].to_numpy()
    if (close == close[0]).all():
        return [
            f"prices are flat over all {len(close)} bars ({days[0].isoformat()} to "
            f"{days[-1].isoformat()}, close {close[0]:g}); returns, RSI and MACD say nothing"
        ]
    ohlc = bars[["open", "high", "low", "close"]].to_numpy(dtype="float64")
    repeated = (ohlc[1:] == ohlc[:-1]).all(axis=1)
    # A bar that did not trade is often filled as open = high = low = close = the last close.
    filled = (ohlc[1:] == close[:-1, None]).all(axis=1)
    unchanged = repeated | filled
    # Bars in the trailing run: the run of unchanged bars plus the bar they repeat.
    moved = np.flatnonzero(~unchanged)
    run = len(unchanged) - (int(moved[-1]) + 1 if len(moved) else 0) + 1
    if run < sessions or not unchanged[-1]:
        return []
    return [
        f"prices have not moved over the last {run} bars ({days[-run].isoformat()} to "
        f"{days[-1].isoformat()}, close {close[-1]:g}): trading halted or the data stopped "
        "updating; the latest returns and RSI say nothing"
    ]


def volume(bars: pd.DataFrame, *, sessions: int) -> list[str]:
    """Zero or constant volume over the last `sessions` bars."""
    recent = bars["volume"].to_numpy(dtype="float64")[-sessions:]
    if len(recent) < 2:
        return []
    zeros = int((recent == 0).sum())
    last = f"the last {len(recent)} bars"
    if (recent == recent[0]).all():
        value = "0" if recent[0] == 0 else f"the same ({recent[0]:,.0f})"
        return [f"volume is {value} on each of {last}; volume features are missing"]
    if zeros:
        return [f"volume is 0 on {zeros} of {last}; volume features are unreliable"]
    return []


def stale(bars: pd.DataFrame, *, as_of: dt.date, calendar: ExchangeCalendar) -> list[str]:
    """Sessions up to `as_of` after the last bar: the data stops before the run's day."""
    last = bars["date"].iloc[-1]
    if last >= as_of:
        return []
    after = calendar.sessions(last + dt.timedelta(days=1), as_of)
    if not after:
        return []
    span = (
        after[0].isoformat()
        if len(after) == 1
        else f"the {len(after)} sessions from {after[0].isoformat()} to {after[-1].isoformat()}"
    )
    return [f"the last bar is {last.isoformat()}: no bar for {span} (the data is stale)"]


def _sessions(count: int) -> str:
    return f"{count} session" if count == 1 else f"{count} sessions"
