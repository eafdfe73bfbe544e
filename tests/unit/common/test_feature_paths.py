"""One feature path: a (symbol, day) row is the same from a daily run's window, a backfill's range
and a whole training history, on random windows of simulated and real-looking prices.

The draws come from a seed printed with each case; `MARKETSENSE_FEATURE_SEED` replays one.
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd
import pytest

from marketsense.common.features import (
    FEATURE_COLUMNS,
    MIN_BARS,
    WARMUP_BARS,
    compute_feature_panel,
    compute_features,
)
from marketsense.ingestion.sources.simulated import SimulatedMarket

SEED = int(os.environ.get("MARKETSENSE_FEATURE_SEED", "20261120"))
"""Seed of every draw below."""

AS_OF = dt.date(2026, 11, 20)
PRICES = ("open", "high", "low", "close")
TOLERANCE = 1e-9
"""Largest difference allowed between two paths, in each feature's own unit, in float64."""


def random_walk(rng: np.random.Generator, days: int, level: float, vol: float) -> pd.DataFrame:
    """Bars of a random walk with GARCH-free noise, overnight gaps and lognormal volume."""
    close = level * np.exp(np.cumsum(rng.normal(0, vol, days)))
    opening = close * np.exp(rng.normal(0, vol / 3, days))
    return pd.DataFrame(
        {
            "date": pd.bdate_range(end=AS_OF, periods=days).date,
            "open": opening,
            "high": np.maximum(opening, close) * 1.002,
            "low": np.minimum(opening, close) * 0.998,
            "close": close,
            "volume": np.round(rng.lognormal(12, 0.6, days)),
        }
    )


def real_looking(rng: np.random.Generator, kind: str) -> pd.DataFrame:
    """Random walks with what real files hold: an unadjusted split, a four-week gap, a flat
    stretch, days without volume, a stretch of constant volume, a penny stock, a calm spell."""
    days = int(rng.integers(MIN_BARS + 60, 1400))
    bars = random_walk(rng, days, level=float(np.exp(rng.uniform(0, 8))), vol=0.02)
    prices = bars[list(PRICES)].to_numpy(copy=True)
    volume = bars["volume"].to_numpy(copy=True)
    at = int(rng.integers(20, days - 30))
    if kind == "split":
        prices[:at] *= 10  # 1:10, not adjusted
    elif kind == "flat":
        prices[at : at + 26] = prices[at, 3]
    elif kind == "zero volume":
        volume[rng.choice(days, 12, replace=False)] = 0.0
    elif kind == "constant volume":
        volume[at : at + 31] = 250_000.0
    elif kind == "penny":
        prices *= 0.001
    elif kind == "calm":
        prices[at:] = prices[at, 3] * np.exp(np.cumsum(rng.normal(0, 0.0005, days - at)))[:, None]
    bars[list(PRICES)] = prices
    bars["volume"] = volume
    if kind == "gap":
        bars = bars.drop(index=range(at, at + 20)).reset_index(drop=True)
    return bars


def histories(seed: int) -> dict[str, pd.DataFrame]:
    """Simulated symbols of random history lengths and every kind of real-looking walk."""
    rng = np.random.default_rng(seed)
    market = SimulatedMarket(seed=int(rng.integers(1, 1000)))
    found = {
        f"SIM{i}": market.daily_bars(f"SIM{i}", as_of=AS_OF, days=int(rng.integers(MIN_BARS, 1800)))
        for i in range(4)
    }
    for kind in (
        "plain",
        "split",
        "gap",
        "flat",
        "zero volume",
        "constant volume",
        "penny",
        "calm",
    ):
        found[kind.upper().replace(" ", "_")] = real_looking(rng, kind)
    return found


def assert_same(a: pd.Series, b: pd.Series, what: str) -> None:
    """Equal to the tolerance in every feature, NaN only where the other is NaN too."""
    x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
    assert (np.isnan(x) == np.isnan(y)).all(), f"{what}: missing in one path only\n{a}\n{b}"
    worst = np.nanmax(np.abs(x - y), initial=0.0)
    assert worst <= TOLERANCE, f"{what}: differs by {worst:.2e}\n{pd.concat([a, b], axis=1)}"


@pytest.mark.parametrize("case", range(3))
def test_a_days_features_are_the_same_in_a_run_a_backfill_and_a_training_set(case: int) -> None:
    seed = SEED + case
    print(f"seed {seed} (MARKETSENSE_FEATURE_SEED={seed} replays this case)")
    rng = np.random.default_rng(seed)
    bars_by_symbol = histories(seed)
    training = compute_feature_panel(bars_by_symbol, dtype="float64").set_index(["symbol", "date"])
    for symbol, bars in bars_by_symbol.items():
        n = len(bars)
        if n < MIN_BARS:
            continue
        for _ in range(4):
            day = int(rng.integers(WARMUP_BARS, n))  # a day that has a row
            what = f"{symbol} day {day} of {n}"
            expected = training.loc[(symbol, bars["date"].iloc[day])]
            # A daily run: the run's lookback (at least MIN_BARS) up to the day.
            lookback = MIN_BARS + int(rng.integers(0, 3)) * int(rng.integers(0, 200))
            window = bars.iloc[max(day + 1 - lookback, 0) : day + 1]
            daily = compute_features(window, dtype="float64").iloc[-1]
            assert_same(daily, expected[list(FEATURE_COLUMNS)], f"{what}, daily run")
            # A backfill: from its first day minus the warm-up to its last day, past this one.
            start = int(rng.integers(WARMUP_BARS, day + 1))
            end = int(rng.integers(day, n))
            backfill = compute_features(bars.iloc[start - WARMUP_BARS : end + 1], dtype="float64")
            row = backfill.loc[bars["date"].iloc[day]]
            assert_same(row, expected[list(FEATURE_COLUMNS)], f"{what}, backfill {start}..{end}")
