"""Market data sources; the simulated market is the deterministic embedded default."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Protocol

import numpy as np
import pandas as pd

HISTORY_START = dt.date(2015, 1, 1)
"""First trading day of the simulated history."""


class BarSource(Protocol):
    """Something that returns daily bars for a symbol."""

    def daily_bars(self, symbol: str, *, as_of: dt.date, days: int) -> pd.DataFrame:
        """Up to `days` daily bars ending at `as_of` (date, open, high, low, close, volume)."""
        ...


class SimulatedMarket:
    """A seeded market: one shared market factor, a beta and idiosyncratic noise per symbol.

    The same seed and symbol always give the same history, whatever `as_of` asks for.
    """

    def __init__(self, seed: int = 7):
        self.seed = seed
        self._market_cache: dict[dt.date, pd.Series] = {}

    def _calendar(self, as_of: dt.date) -> pd.DatetimeIndex:
        return pd.bdate_range(HISTORY_START, as_of)

    def _market_returns(self, as_of: dt.date) -> pd.Series:
        cached = self._market_cache.get(as_of)
        if cached is None:
            dates = self._calendar(as_of)
            rng = np.random.default_rng([self.seed, 0])
            # Drawn for the whole calendar from the start, so a later as_of extends the same path.
            cached = pd.Series(rng.normal(0.0003, 0.01, len(dates)), index=dates)
            self._market_cache = {as_of: cached}
        return cached

    def daily_bars(self, symbol: str, *, as_of: dt.date, days: int) -> pd.DataFrame:
        """Daily OHLCV bars for `days` trading days ending at `as_of`."""
        market = self._market_returns(as_of)
        n = len(market)
        symbol_key = zlib.crc32(symbol.encode())
        traits = np.random.default_rng([self.seed, symbol_key, 0])
        beta = traits.uniform(0.5, 1.5)
        idio_vol = traits.uniform(0.008, 0.025)
        start_price = traits.uniform(20, 400)
        base_volume = traits.uniform(2e5, 5e6)

        def stream(component: int) -> np.random.Generator:
            # One generator per series: a longer history extends each series, never shifts it.
            return np.random.default_rng([self.seed, symbol_key, component])

        idio = stream(1).normal(0, idio_vol, n)
        # Yesterday's market move leaks a little into today's stock: something a model can learn.
        lagged = np.concatenate([[0.0], market.to_numpy()[:-1]])
        returns = beta * market.to_numpy() + 0.15 * lagged + idio
        close = start_price * np.exp(np.cumsum(returns))
        gap = stream(2).normal(0, idio_vol / 3, n)
        open_ = np.concatenate([[start_price], close[:-1]]) * np.exp(gap)
        spread = np.abs(stream(3).normal(0, idio_vol, n))
        high = np.maximum(open_, close) * (1 + spread)
        low = np.minimum(open_, close) * (1 - spread)
        volume = base_volume * np.exp(stream(4).normal(0, 0.3, n) + 8 * np.abs(returns))
        bars = pd.DataFrame(
            {
                "date": pd.DatetimeIndex(market.index).date,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume.round(),
            }
        )
        return bars.iloc[-days:].reset_index(drop=True)
