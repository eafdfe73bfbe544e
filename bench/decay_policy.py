"""The decay policy's false alarms and detection delay on the simulated market, over seeds.

For each seed, 50 symbols of the simulated market and two scores a day per symbol:

- perfect: the day's true text tone, which leads the next day's return (annualised Sharpe of the
  book about 15.6);
- calibrated: the tone plus independent noise, scaled so the book's Sharpe is about the baseline
  predictor's measured 10 (a stand-in for the baseline, stated as such: training and serving the
  real one over every seed and day takes far longer than a bench should).

The long-short book of monitoring's daily figures (top and bottom fifth, 5 basis points per unit
of turnover, equal-weight benchmark) is judged day by day by `replay` with the default policy, in
two scenarios: stable (no regime change, `--days` outcome days, two simulated years by default)
and flipped (the text signal's sign flips, `regime_signal_factor=-1`, after `--before` outcome
days, judged `--after` more). False alarms are the alerts in each simulated year of the stable
scenario, and the alerts before the flip in the flipped one; the delay is trading days from the
first flipped day to the alert (1: the alert comes on the first flipped day).

    uv run python bench/decay_policy.py [--seeds 1 2 3 4 5 6 7 8 9 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketsense.common.calendar import DEFAULT_EXCHANGE, exchange_calendar
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.monitoring.decay import DecayPolicy, replay
from marketsense.monitoring.figures import daily_figures

LAST_DAY = dt.date(2026, 12, 2)
SYMBOLS = [f"SIM{i:02d}" for i in range(50)]
CALIBRATED_NOISE = 0.7
"""Noise added to the tone, in units of the tone's spread, for a book Sharpe of about 10."""


@dataclass(frozen=True)
class Outcome:
    """What one seed and scenario gave."""

    sharpe: float
    """The book's annualised Sharpe ratio before any flip."""
    alerts_per_year: list[int]
    """Alerts before any flip, in each simulated year (252 outcome days) from the first."""
    delay: int | None
    """Trading days from the first flipped day to the first alert on or after it."""


def sessions(days: int) -> list[dt.date]:
    """The last `days` sessions to LAST_DAY."""
    found = exchange_calendar(DEFAULT_EXCHANGE).sessions(dt.date(2024, 1, 2), LAST_DAY)
    return [d.date() for d in pd.DatetimeIndex(found)[-days:]]


def resolved(market: SimulatedMarket, days: int, noise: float, seed: int) -> pd.DataFrame:
    """Resolved predictions of `days` outcome days: score the tone of the day before."""
    rows = []
    rng = np.random.default_rng([seed, 16])
    for symbol in SYMBOLS:
        bars = market.daily_bars(symbol, as_of=LAST_DAY, days=days + 1)
        tone = market.daily_tone(symbol, as_of=LAST_DAY, days=days + 1).to_numpy()
        close = bars["close"].to_numpy()
        score = tone[:-1] + noise * np.std(tone) * rng.standard_normal(days)
        rows.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "as_of": bars["date"].to_numpy()[:-1],
                    "outcome_day": bars["date"].to_numpy()[1:],
                    # A score is a ranking: squash it into a probability for the frame's column.
                    "prob_up": 1 / (1 + np.exp(-4 * score)),
                    "realized_return": close[1:] / close[:-1] - 1,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def judge_seed(seed: int, noise: float, flip_at: int | None, days: int) -> Outcome:
    """Replay the policy over one seed's book; `flip_at` outcome days before the flip."""
    calendar = sessions(days)
    change = calendar[flip_at - 1] if flip_at is not None else None
    market = SimulatedMarket(seed, regime_change=change, regime_signal_factor=-1.0)
    daily = daily_figures(resolved(market, days, noise, seed), quantile=0.2, cost_bps=5.0)
    alerts = [calendar.index(f.day) for f in replay(daily, DecayPolicy())]
    before = flip_at if flip_at is not None else days
    per_year = [0] * -(-before // 252)
    for at in alerts:
        if at < before:
            per_year[at // 252] += 1
    after = [at for at in alerts if at >= before]
    head = daily["strategy_return"].to_numpy()[:before]
    sharpe = float(np.mean(head) / np.std(head, ddof=1) * np.sqrt(252))
    return Outcome(
        sharpe=sharpe,
        alerts_per_year=per_year,
        delay=after[0] - before + 1 if flip_at is not None and after else None,
    )


def main() -> None:
    """Run every seed and scenario and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--days", type=int, default=504)
    parser.add_argument("--before", type=int, default=126)
    parser.add_argument("--after", type=int, default=63)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{DecayPolicy()}, seeds {args.seeds}")
    print(
        "| score | seed | stable Sharpe | stable alerts, each year | Sharpe before the flip | "
        "alerts before the flip | delay (trading days) |"
    )
    for name, noise in (("perfect", 0.0), ("calibrated", CALIBRATED_NOISE)):
        for seed in args.seeds:
            stable = judge_seed(seed, noise, None, args.days)
            flipped = judge_seed(seed, noise, args.before, args.before + args.after)
            print(
                f"| {name} | {seed} | {stable.sharpe:.1f} | "
                f"{', '.join(map(str, stable.alerts_per_year))} | {flipped.sharpe:.1f} | "
                f"{sum(flipped.alerts_per_year)} | {flipped.delay} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
