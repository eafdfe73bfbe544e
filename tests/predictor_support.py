"""Training tables for the predictor trainers' suites: a few simulated symbols with their texts
scored by their true tone, and a synthetic table whose labels follow the day's mean sentiment."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from marketsense.common.features import FEATURE_COLUMNS, MIN_BARS, SENTIMENT_COLUMNS
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.modelkit.baseline import training_table

AS_OF = dt.date(2026, 11, 20)


def simulated_table(*, symbols: int = 4, days: int = 130, seed: int = 3) -> pd.DataFrame:
    """The training table of `symbols` simulated symbols over `days` feature days, each text
    scored with its day's true tone (a perfect sentiment model)."""
    market = SimulatedMarket(seed=seed)
    bars: dict[str, pd.DataFrame] = {}
    scored: dict[str, pd.DataFrame] = {}
    for symbol in (f"SIM{i:02d}" for i in range(symbols)):
        bars[symbol] = market.daily_bars(symbol, as_of=AS_OF, days=MIN_BARS + days)
        texts = market.texts(symbol, as_of=AS_OF, days=days)
        tone = market.daily_tone(symbol, as_of=AS_OF, days=days)
        scored[symbol] = pd.DataFrame({"date": texts["date"], "score": texts["date"].map(tone)})
    return training_table(bars, scored)


def planted_table(
    *, days: int = 60, symbols: int = 20, strength: float = 1.0, seed: int = 0
) -> pd.DataFrame:
    """Standard-normal features; on about seven days in ten a symbol has texts, and its label
    is up when `strength` times the day's mean sentiment plus unit noise is above 0."""
    rng = np.random.default_rng(seed)
    rows = days * symbols
    x = rng.normal(size=(rows, len(FEATURE_COLUMNS)))
    has_texts = rng.random(rows) < 0.7
    mean = FEATURE_COLUMNS.index("sentiment_mean")
    sentiment = np.array([FEATURE_COLUMNS.index(c) for c in SENTIMENT_COLUMNS])
    x[np.ix_(~has_texts, sentiment)] = np.nan
    x[:, FEATURE_COLUMNS.index("sentiment_count")] = np.where(
        has_texts, rng.integers(1, 5, rows), 0
    )
    x[:, FEATURE_COLUMNS.index("has_sentiment")] = has_texts
    signal = strength * np.nan_to_num(x[:, mean])
    table = pd.DataFrame(x, columns=list(FEATURE_COLUMNS))
    first = dt.date(2025, 1, 2)
    table.insert(0, "label", (signal + rng.normal(size=rows) > 0).astype(int))
    table.insert(0, "date", np.repeat([first + dt.timedelta(days=d) for d in range(days)], symbols))
    table.insert(0, "symbol", np.tile([f"S{i:02d}" for i in range(symbols)], days))
    return table
