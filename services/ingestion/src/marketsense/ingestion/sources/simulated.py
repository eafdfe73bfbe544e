"""The simulated market: seeded daily bars, and texts whose tone leads the next day's return.

Every series is drawn from its own generator, seeded by `[seed, crc32(symbol), component]`, over
the New York Stock Exchange's sessions from `HISTORY_START` (no weekend or holiday bars: one draw
per session), and every recursion runs forwards in time. So a later
`as_of` extends the same history and never changes a day already drawn.

Returns follow a factor model: a shared market factor and a sector factor (both scaled by the
symbol's betas), yesterday's market move (a small lead a model can learn), idiosyncratic noise with
GARCH(1,1) variance, and the tone of yesterday's texts times `text_signal_strength` (multiplied by
`regime_signal_factor` on days after `regime_change`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketsense.common.calendar import DEFAULT_EXCHANGE, exchange_calendar
from marketsense.ingestion.sources.base import SourceRejected, SourceUnavailable, SymbolData
from marketsense.ingestion.sources.simulated_texts import WORDING_DRAWS, render_texts

HISTORY_START = dt.date(2015, 1, 2)
"""First trading day of the simulated history (the first 2015 session of the exchange)."""

DEFAULT_SECTORS = 8
"""Sectors the simulated symbols fall into (by crc32 of the symbol)."""

_MARKET_DRIFT = 0.0003
_MARKET_VOL = 0.01
_SECTOR_VOL = 0.007
_GARCH_ALPHA = 0.10
_GARCH_BETA = 0.88
_LAGGED_MARKET = 0.15
_TEXT_COUNT_CDF = np.cumsum([0.25, 0.30, 0.25, 0.12])  # P(0..3 items); 4 items takes the rest
_DAY_TONE_SD = 0.5
_ITEM_TONE_SD = 0.25
_FILLER_SHARE = 0.15  # items with no tone at all: schedules, filings, "anyone watching?"
_SECTOR_KEY = 1000
_FAILURE_KEY = 99
_CACHED_SYMBOLS = 64  # about half a megabyte of history each

# Components of a symbol's generators. A new series takes a new number: reusing one would change
# an existing series, and with it every stored history.
_TRAITS, _IDIO, _GAP, _RANGE, _VOLUME, _DAY_TONE, _TEXT_COUNT, _ITEM_TONE, _WORDING = range(9)


def _garch_variance(z: np.ndarray, *, var: float) -> np.ndarray:
    """Conditional variances of a GARCH(1,1) driven by standard normal shocks `z`."""
    omega = var * (1 - _GARCH_ALPHA - _GARCH_BETA)
    out = np.empty(len(z))
    h = var
    # A recursion: each day's variance needs yesterday's, so this loop cannot be vectorised.
    for t, shock in enumerate(z.tolist()):
        out[t] = h
        h = omega + (_GARCH_ALPHA * shock * shock + _GARCH_BETA) * h
    return out


@dataclass(frozen=True)
class _Path:
    """One symbol's full simulated history up to some day: day arrays and item arrays."""

    returns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    day_tone: np.ndarray
    """Mean tone of the day's text items, 0 on days without any."""
    counts: np.ndarray
    """Text items per day."""
    item_tone: np.ndarray
    filler: np.ndarray
    wording: np.ndarray
    """Uniform draws per item that pick its wording and publication time."""

    def head(self, n: int) -> _Path:
        """The first `n` days, which are exactly what a history of `n` days would be."""
        items = int(self.counts[:n].sum())
        return _Path(
            returns=self.returns[:n],
            open=self.open[:n],
            high=self.high[:n],
            low=self.low[:n],
            close=self.close[:n],
            volume=self.volume[:n],
            day_tone=self.day_tone[:n],
            counts=self.counts[:n],
            item_tone=self.item_tone[:items],
            filler=self.filler[:items],
            wording=self.wording[:items],
        )


class SimulatedMarket:
    """A seeded market of any symbols: factor-model bars and texts that lead returns.

    The same settings and symbol always give the same history, whatever `as_of` asks for.
    """

    name = "simulated"

    def __init__(
        self,
        seed: int = 7,
        *,
        sectors: int = DEFAULT_SECTORS,
        text_signal_strength: float = 0.5,
        regime_change: dt.date | None = None,
        regime_signal_factor: float = -1.0,
        fail_symbols: Iterable[str] = (),
        unavailable_symbols: Iterable[str] = (),
        transient_failure_rate: float = 0.0,
    ):
        if sectors < 1:
            raise ValueError("the simulated market needs at least one sector")
        if not 0.0 <= transient_failure_rate <= 1.0:
            raise ValueError("transient_failure_rate is a probability, between 0 and 1")
        self.seed = seed
        self.sectors = sectors
        self.text_signal_strength = text_signal_strength
        self.regime_change = regime_change
        self.regime_signal_factor = regime_signal_factor
        self.fail_symbols = frozenset(s.upper() for s in fail_symbols)
        self.unavailable_symbols = frozenset(s.upper() for s in unavailable_symbols)
        self.transient_failure_rate = transient_failure_rate
        self._attempts: dict[tuple[str, dt.date], int] = {}
        self._factors: dict[int, np.ndarray] = {}
        self._paths: dict[str, _Path] = {}
        self._calendar = pd.DatetimeIndex([])
        self._calendar_end = dt.date.min
        # fetch() simulates in worker threads; the caches are shared between them.
        self._lock = threading.Lock()

    def sector_of(self, symbol: str) -> int:
        """The sector a symbol belongs to, from 0 to `sectors - 1`."""
        return zlib.crc32(symbol.encode()) % self.sectors

    async def fetch(self, symbol: str, *, as_of: dt.date, days: int) -> SymbolData:
        """Bars and texts of the last `days` trading days to `as_of`, after injected failures."""
        self._inject_failure(symbol, as_of)
        bars, texts = await asyncio.to_thread(self._window, symbol, as_of, days)
        return SymbolData(bars=bars, texts=texts)

    def daily_bars(self, symbol: str, *, as_of: dt.date, days: int) -> pd.DataFrame:
        """Daily OHLCV bars for `days` trading days ending at `as_of`."""
        dates, path = self._history(symbol, as_of)
        return _bars(dates, path, _first_day(len(dates), days))

    def texts(self, symbol: str, *, as_of: dt.date, days: int) -> pd.DataFrame:
        """Text items (headlines and posts) of the `days` trading days ending at `as_of`."""
        dates, path = self._history(symbol, as_of)
        return _texts(symbol, dates, path, _first_day(len(dates), days))

    def daily_tone(self, symbol: str, *, as_of: dt.date, days: int) -> pd.Series:
        """The true mean tone of each day's texts, in [-1, 1], 0 without texts; indexed by date.

        What a perfect sentiment model would read; for tests and for judging real models.
        """
        dates, path = self._history(symbol, as_of)
        start = _first_day(len(dates), days)
        return pd.Series(path.day_tone[start:], index=dates[start:].date, name="tone")

    def _inject_failure(self, symbol: str, as_of: dt.date) -> None:
        """Raise the configured permanent or passing failure for this attempt, if any."""
        if symbol.upper() in self.fail_symbols:
            raise SourceRejected(f"simulated: {symbol} is configured to fail permanently")
        if symbol.upper() in self.unavailable_symbols:
            raise SourceUnavailable(f"simulated: {symbol} is configured to be unavailable")
        key = (symbol, as_of)
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        if self.transient_failure_rate > 0:
            draw = np.random.default_rng(
                [self.seed, zlib.crc32(symbol.encode()), as_of.toordinal(), attempt, _FAILURE_KEY]
            ).random()
            if draw < self.transient_failure_rate:
                raise SourceUnavailable(
                    f"simulated: passing failure for {symbol} on {as_of} (attempt {attempt + 1})"
                )

    def _window(self, symbol: str, as_of: dt.date, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Bars and texts of the last `days` trading days up to `as_of`."""
        dates, path = self._history(symbol, as_of)
        start = _first_day(len(dates), days)
        return _bars(dates, path, start), _texts(symbol, dates, path, start)

    def _history(self, symbol: str, as_of: dt.date) -> tuple[pd.DatetimeIndex, _Path]:
        """The sessions from `HISTORY_START` to `as_of` and the symbol's path over them."""
        with self._lock:
            if self._calendar_end < as_of:
                sessions = exchange_calendar(DEFAULT_EXCHANGE).sessions(
                    HISTORY_START, max(as_of, HISTORY_START)
                )
                self._calendar = pd.DatetimeIndex(sessions)
                self._calendar_end = as_of
            n = int(self._calendar.searchsorted(pd.Timestamp(as_of), side="right"))
            cached = self._paths.get(symbol)
            if cached is None or len(cached.returns) < n:
                cached = self._simulate(symbol, self._calendar)
                if len(self._paths) >= _CACHED_SYMBOLS:  # bound memory: drop the oldest
                    del self._paths[next(iter(self._paths))]
                self._paths[symbol] = cached
            return self._calendar[:n], cached.head(n)

    def _factor(self, key: int, n: int) -> np.ndarray:
        """Daily returns of the market (key 0) or a sector (key `_SECTOR_KEY + sector`)."""
        cached = self._factors.get(key)
        if cached is None or len(cached) < n:
            if key == 0:
                z = np.random.default_rng([self.seed, 0]).standard_normal(n)
                var = _garch_variance(z, var=_MARKET_VOL**2)
                cached = _MARKET_DRIFT + np.sqrt(var) * z
            else:
                cached = np.random.default_rng([self.seed, 0, key]).normal(0, _SECTOR_VOL, n)
            self._factors[key] = cached
        return cached[:n]

    def _simulate(self, symbol: str, calendar: pd.DatetimeIndex) -> _Path:
        """Draw a symbol's whole history over `calendar`."""
        n = len(calendar)
        symbol_key = zlib.crc32(symbol.encode())

        def stream(component: int) -> np.random.Generator:
            # One generator per series: a longer history extends each series, never shifts it.
            return np.random.default_rng([self.seed, symbol_key, component])

        traits = stream(_TRAITS)
        beta = traits.uniform(0.5, 1.5)
        idio_vol = traits.uniform(0.008, 0.025)
        start_price = traits.uniform(20, 400)
        base_volume = traits.uniform(2e5, 5e6)
        sector_beta = traits.uniform(0.6, 1.4)

        counts = np.searchsorted(_TEXT_COUNT_CDF, stream(_TEXT_COUNT).random(n), side="right")
        day_latent = np.clip(stream(_DAY_TONE).normal(0, _DAY_TONE_SD, n), -1, 1)
        item_day = np.repeat(np.arange(n), counts)
        wording = stream(_WORDING).random((len(item_day), WORDING_DRAWS))
        filler = wording[:, 0] < _FILLER_SHARE
        noise = stream(_ITEM_TONE).normal(0, _ITEM_TONE_SD, len(item_day))
        item_tone = np.where(filler, 0.0, np.clip(day_latent[item_day] + noise, -1, 1))
        day_tone = np.bincount(item_day, weights=item_tone, minlength=n) / np.maximum(counts, 1)

        factor = np.ones(n)
        if self.regime_change is not None:
            factor[calendar > pd.Timestamp(self.regime_change)] = self.regime_signal_factor
        text_effect = np.zeros(n)
        text_effect[1:] = self.text_signal_strength * factor[1:] * day_tone[:-1] * idio_vol

        market = self._factor(0, n)
        sector = self._factor(_SECTOR_KEY + symbol_key % self.sectors, n)
        lagged = np.concatenate([[0.0], market[:-1]])
        z = stream(_IDIO).standard_normal(n)
        idio_var = _garch_variance(z, var=idio_vol**2)
        returns = (
            beta * market
            + sector_beta * sector
            + _LAGGED_MARKET * lagged
            + np.sqrt(idio_var) * z
            + text_effect
        )
        close = start_price * np.exp(np.cumsum(returns))
        gap = stream(_GAP).normal(0, idio_vol / 3, n)
        open_ = np.concatenate([[start_price], close[:-1]]) * np.exp(gap)
        spread = np.minimum(np.abs(stream(_RANGE).standard_normal(n)) * np.sqrt(idio_var), 0.5)
        volume = base_volume * np.exp(
            stream(_VOLUME).normal(0, 0.3, n) + 8 * np.abs(returns) + 0.1 * counts
        )
        return _Path(
            returns=returns,
            open=open_,
            high=np.maximum(open_, close) * (1 + spread),
            low=np.minimum(open_, close) * (1 - spread),
            close=close,
            volume=volume.round(),
            day_tone=day_tone,
            counts=counts,
            item_tone=item_tone,
            filler=filler,
            wording=wording,
        )


def _first_day(n: int, days: int) -> int:
    """Index of the first of the last `days` of `n` days (`n` when `days` is not positive)."""
    return max(n - days, 0) if days > 0 else n


def _bars(dates: pd.DatetimeIndex, path: _Path, start: int) -> pd.DataFrame:
    """The bars of days `start` onwards."""
    return pd.DataFrame(
        {
            "date": dates[start:].date,
            "open": path.open[start:],
            "high": path.high[start:],
            "low": path.low[start:],
            "close": path.close[start:],
            "volume": path.volume[start:],
        }
    )


def _texts(symbol: str, dates: pd.DatetimeIndex, path: _Path, start: int) -> pd.DataFrame:
    """The text items of days `start` onwards, as a texts frame."""
    return render_texts(
        symbol,
        dates,
        counts=path.counts,
        item_tone=path.item_tone,
        filler=path.filler,
        wording=path.wording,
        start=start,
    )
