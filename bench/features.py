"""Feature computation, side by side: the panel against a pandas groupby, the daily row against
the previous function.

(a) Qlib's job size, 800 symbols x 3,500 days of bars with about one scored text every other
    symbol-day: `compute_feature_panel` against a plain pandas groupby of the same definitions
    (`bench/features_reference.py`), after checking both give the same values to 1e-9.
(b) A daily run's row for one symbol: `compute_features` on the run's window (`MIN_BARS` bars)
    against the previous function (`bench/features_previous.py`) on the 60 bars it used.

    uv run python bench/features.py [--symbols 800 --days 3500 --rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from features_previous import compute_features as previous_compute_features
from features_reference import groupby_features
from marketsense.common.features import (
    FEATURE_COLUMNS,
    MIN_BARS,
    compute_feature_panel,
    compute_features,
)
from marketsense.ingestion.sources.simulated import SimulatedMarket

LAST_DAY = dt.date(2026, 11, 20)
TOLERANCE = 1e-9


def panel_bars(symbols: int, days: int, seed: int) -> pd.DataFrame:
    """Random-walk bars of many symbols at price levels from 1 to 2,000, long and sorted."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(end=LAST_DAY, periods=days).to_numpy()
    level = np.exp(rng.uniform(0, np.log(2000), (symbols, 1)))
    vol = rng.uniform(0.008, 0.04, (symbols, 1))
    close = level * np.exp(np.cumsum(rng.normal(0, 1, (symbols, days)) * vol, axis=1))
    opening = close * np.exp(rng.normal(0, 0.3, (symbols, days)) * vol)
    volume = np.round(rng.lognormal(13, 0.5, (symbols, days)))
    return pd.DataFrame(
        {
            "symbol": np.repeat([f"S{i:04d}" for i in range(symbols)], days),
            "date": np.tile(dates, symbols),
            "open": opening.ravel(),
            "high": np.maximum(opening, close).ravel(),
            "low": np.minimum(opening, close).ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )


def panel_texts(bars: pd.DataFrame, per_day: float, seed: int) -> pd.DataFrame:
    """Scored texts on random symbol-days, in the order a source would list them."""
    rng = np.random.default_rng(seed + 1)
    rows = np.sort(rng.integers(0, len(bars), int(len(bars) * per_day)))
    return pd.DataFrame(
        {
            "symbol": bars["symbol"].to_numpy()[rows],
            "date": bars["date"].to_numpy()[rows],
            "score": np.round(rng.uniform(-1, 1, len(rows)), 2),  # ties test "first strongest"
        }
    )


def best_of(rounds: int, work: Callable[[], object]) -> tuple[float, float]:
    """Best wall and CPU seconds of `work` over `rounds` calls."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def check_same(ours: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Largest difference between two panels' feature values; raise if over the tolerance."""
    assert ours[["symbol", "date"]].equals(reference[["symbol", "date"]]), "rows differ"
    a = ours[list(FEATURE_COLUMNS)].to_numpy()
    b = reference[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")
    if not (np.isnan(a) == np.isnan(b)).all():
        raise AssertionError("missing values differ between the panel and the groupby")
    worst = float(np.nanmax(np.abs(a - b)))
    if worst > TOLERANCE:
        raise AssertionError(f"the panel and the groupby differ by {worst:.2e}")
    return worst


def bench_panel(args: argparse.Namespace) -> None:
    """Part (a): the panel against the groupby at the given size."""
    bars = panel_bars(args.symbols, args.days, args.seed)
    texts = panel_texts(bars, 0.5, args.seed)
    print(f"(a) panel: {args.symbols} symbols x {args.days} days, {len(texts):,} scored texts")
    ours = compute_feature_panel(bars, texts, dtype="float64")
    worst = check_same(ours, groupby_features(bars, texts))
    print(f"    same values: {len(ours):,} rows, largest difference {worst:.1e}")
    del ours
    panel = best_of(args.rounds, lambda: compute_feature_panel(bars, texts))
    groupby = best_of(args.rounds, lambda: groupby_features(bars, texts))
    for name, (wall, cpu) in (("compute_feature_panel", panel), ("pandas groupby", groupby)):
        print(f"    {name:<22} {wall:7.2f} s wall  {cpu:7.2f} s CPU")
    print(
        f"    groupby / panel: {groupby[0] / panel[0]:.2f}x wall, {groupby[1] / panel[1]:.2f}x CPU"
    )


def repeat(work: Callable[[], object], calls: int) -> None:
    """Call `work` `calls` times."""
    for _ in range(calls):
        work()


def bench_daily(args: argparse.Namespace) -> None:
    """Part (b): one symbol's row for a daily run, new window against the previous 60 bars."""
    bars = SimulatedMarket(seed=args.seed).daily_bars("AAPL", as_of=LAST_DAY, days=MIN_BARS)
    scored = pd.DataFrame({"date": [LAST_DAY] * 3, "score": [0.6, -0.2, 0.1]})
    previous_bars = bars.tail(60).reset_index(drop=True)
    calls = args.daily_calls
    print(f"(b) daily row: {calls} calls each")
    sides: dict[str, Callable[[], object]] = {
        f"compute_features, {MIN_BARS} bars": lambda: compute_features(bars, scored),
        "previous function, 60 bars": lambda: previous_compute_features(previous_bars, scored),
    }
    per_call = {}
    for name, work in sides.items():
        wall, _ = best_of(args.rounds, partial(repeat, work, calls))
        per_call[name] = wall / calls
        print(f"    {name:<30} {wall / calls * 1e6:8.0f} us a row")
    new, old = per_call.values()
    print(f"    previous / new: {old / new:.2f}x")


def main() -> None:
    """Run both parts and print the machine they ran on."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=800)
    parser.add_argument("--days", type=int, default=3500)
    parser.add_argument("--rounds", type=int, default=3, help="best of this many")
    parser.add_argument("--daily-calls", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, pandas {pd.__version__}, numpy {np.__version__}"
    )
    bench_panel(args)
    bench_daily(args)


if __name__ == "__main__":
    main()
