"""The simulated market: seeded daily bars, and texts whose tone leads the next day's return.

Every series is drawn from its own generator, seeded by `[seed, crc32(symbol), component]`, over
the whole calendar from `HISTORY_START`, and every recursion runs forwards in time. So a later
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

from marketsense.ingestion.sources.base import (
    TEXT_COLUMNS,
    SourceRejected,
    SourceUnavailable,
    SymbolData,
    empty_texts,
)

HISTORY_START = dt.date(2015, 1, 1)
"""First trading day of the simulated history."""

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
_WORDING_DRAWS = 10
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
        return _render_texts(symbol, dates, path, _first_day(len(dates), days))

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
        return _bars(dates, path, start), _render_texts(symbol, dates, path, start)

    def _history(self, symbol: str, as_of: dt.date) -> tuple[pd.DatetimeIndex, _Path]:
        """The trading days from `HISTORY_START` to `as_of` and the symbol's path over them."""
        with self._lock:
            if self._calendar_end < as_of:
                self._calendar = pd.bdate_range(HISTORY_START, max(as_of, HISTORY_START))
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
        wording = stream(_WORDING).random((len(item_day), _WORDING_DRAWS))
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


def _render_texts(symbol: str, dates: pd.DatetimeIndex, path: _Path, start: int) -> pd.DataFrame:
    """The text items of days `start` onwards, as a texts frame."""
    first_item = int(path.counts[:start].sum())
    if first_item == len(path.item_tone):
        return empty_texts()
    item_day = np.repeat(np.arange(len(dates)), path.counts)[first_item:]
    # Rank of each item within its day, for a stable id.
    offsets = np.concatenate([[0], np.cumsum(path.counts)])[item_day]
    rank = np.arange(first_item, len(path.item_tone)) - offsets
    wording = path.wording[first_item:]
    day_ts = dates[item_day]
    # 12:00 to 19:30 UTC: inside New York trading hours, so each item counts for its own day.
    published = day_ts.tz_localize("UTC") + pd.to_timedelta(
        (12 * 60 + wording[:, 9] * 450).astype("int64"), unit="min"
    )
    rendered = [
        _render(symbol, day.date(), float(tone), bool(filler), draws)
        for day, tone, filler, draws in zip(
            day_ts,
            path.item_tone[first_item:],
            path.filler[first_item:],
            wording,
            strict=True,
        )
    ]
    frame = pd.DataFrame(
        {
            "id": [
                f"sim-{symbol}-{day:%Y%m%d}-{r}"
                for day, r in zip(day_ts, rank.tolist(), strict=True)
            ],
            "published_at": published,
            "date": day_ts.date,
            "source": [source for source, _ in rendered],
            "text": [text for _, text in rendered],
        }
    )
    return frame[list(TEXT_COLUMNS)]


# Wording. Each tone bucket has its own vocabulary, so a sentiment model can read the tone from the
# words; mixed and neutral items use both vocabularies or neither.

_ANALYSTS = (
    "Northbridge Capital",
    "Halden Securities",
    "Crescent Research",
    "Marlow & Co",
    "Eastgate Partners",
)
_SUFFIXES = ("Inc.", "Corp.", "Holdings", "Group", "Technologies", "Industries")

_UP_MILD = ("rise", "edge higher", "climb", "gain", "move higher")
_UP_STRONG = ("soar", "surge", "jump", "rally sharply", "hit a record high")
_DOWN_MILD = ("slip", "edge lower", "fall", "decline", "drift lower")
_DOWN_STRONG = ("plunge", "tumble", "sink", "crash", "hit a 52-week low")
_GOOD_MILD = (
    "beats earnings estimates",
    "raises its dividend",
    "announces a share buyback",
    "wins a new contract",
    "reports solid revenue growth",
)
_GOOD_STRONG = (
    "crushes earnings estimates",
    "raises full-year guidance",
    "reports record profit",
    "wins a multibillion-dollar contract",
    "posts its strongest quarter ever",
)
_BAD_MILD = (
    "misses earnings estimates",
    "trims its outlook",
    "reports slowing sales",
    "delays a product launch",
    "warns of weaker margins",
)
_BAD_STRONG = (
    "badly misses earnings estimates",
    "slashes full-year guidance",
    "reports a surprise loss",
    "faces a fraud investigation",
    "announces mass layoffs",
)
_ANALYST_UP = (
    "upgrades {t} to buy",
    "raises its price target on {c}",
    "starts {c} at outperform",
)
_ANALYST_DOWN = (
    "downgrades {t} to sell",
    "cuts its price target on {c}",
    "starts {c} at underperform",
)
_POST_UP_MILD = ("looking good", "nice setup here", "buyers stepping in", "solid quarter")
_POST_UP_STRONG = (
    "absolutely crushing it",
    "huge breakout",
    "best quarter in years",
    "very bullish here",
)
_POST_DOWN_MILD = ("looking weak", "sellers in control", "not a great setup", "soft quarter")
_POST_DOWN_STRONG = (
    "total disaster",
    "getting crushed",
    "worst quarter in years",
    "very bearish here",
)
_NEUTRAL_EVENTS = (
    "schedules its quarterly earnings call",
    "will present at an industry conference",
    "names a new chief financial officer",
    "files its annual report",
    "confirms its quarterly dividend",
    "holds its annual shareholder meeting",
)

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_SESSIONS = ("early", "midday", "late")

_NEWS_UP = (
    "{c} shares {move} after the company {event}",
    "{c} {event}; shares {move} {pct}%",
    "{analyst} {analyst_view}",
    "Why {c} shares {move} today",
    "{c} shares {move} {pct}% in {session} trading as the company {event}",
)
_NEWS_DOWN = _NEWS_UP
_NEWS_NO_VIEW = (
    "{c} {neutral}",
    "{c} shares little changed ahead of {quarter} results",
    "{c} to report {quarter} results on {weekday}",
    "{c} shares trade flat in {session} trading",
    "What to watch at {c} this week",
)
_NEWS_MIXED = (
    "{c} {good_mild}, but {bad_mild}",
    "{c} {bad_mild}, but {good_mild}",
    "{c} shares swing as the company {good_mild} yet {bad_mild}",
)
_POSTS_UP = (
    "${t} {post}",
    "Just bought more ${t}, {post}",
    "${t} shares {move} {pct}% today, {post}",
    "${t} {event}, {post}",
)
_POSTS_DOWN = (
    "${t} {post}",
    "Just sold my ${t}, {post}",
    "${t} shares {move} {pct}% today, {post}",
    "${t} {event}, {post}",
)
_POSTS_NO_VIEW = (
    "Anyone watching ${t} today?",
    "${t} flat so far, waiting for {quarter} numbers",
    "Holding ${t}, no real view either way",
    "What is everyone's take on ${t} into {quarter} earnings?",
    "Watching ${t} {session} today, nothing to add yet",
)
_POSTS_MIXED = (
    "${t} mixed: {good_mild} but {bad_mild}",
    "${t} {post_up} on revenue, {post_down} on margins",
)


def _pick(options: tuple[str, ...], u: float) -> str:
    """The option a uniform draw in [0, 1) selects."""
    return options[min(int(u * len(options)), len(options) - 1)]


def _render(symbol: str, day: dt.date, tone: float, filler: bool, u: np.ndarray) -> tuple[str, str]:
    """The source (`news` or `post`) and wording of one item of the given tone."""
    news = bool(u[1] < 0.55)
    company = f"{symbol} {_pick(_SUFFIXES, (zlib.crc32(symbol.encode()) % 997) / 997)}"
    strong = abs(tone) > 0.6
    templates: tuple[str, ...]
    move, event, analyst_view, post = "", "", "", ""
    if filler:
        templates = _NEWS_NO_VIEW if news else _POSTS_NO_VIEW
    elif abs(tone) <= 0.2:
        templates = (_NEWS_NO_VIEW + _NEWS_MIXED) if news else (_POSTS_NO_VIEW + _POSTS_MIXED)
    elif tone > 0:
        templates = _NEWS_UP if news else _POSTS_UP
        move = _pick(_UP_STRONG if strong else _UP_MILD, u[3])
        event = _pick(_GOOD_STRONG if strong else _GOOD_MILD, u[4])
        analyst_view = _pick(_ANALYST_UP, u[5])
        post = _pick(_POST_UP_STRONG if strong else _POST_UP_MILD, u[5])
    else:
        templates = _NEWS_DOWN if news else _POSTS_DOWN
        move = _pick(_DOWN_STRONG if strong else _DOWN_MILD, u[3])
        event = _pick(_BAD_STRONG if strong else _BAD_MILD, u[4])
        analyst_view = _pick(_ANALYST_DOWN, u[5])
        post = _pick(_POST_DOWN_STRONG if strong else _POST_DOWN_MILD, u[5])
    text = _pick(templates, u[2]).format(
        c=company,
        t=symbol,
        move=move,
        event=event,
        analyst=_pick(_ANALYSTS, u[6]),
        analyst_view=analyst_view.format(c=company, t=symbol),
        post=post,
        pct=f"{0.5 + 6 * abs(tone) * u[6]:.1f}",
        quarter=f"Q{((day.month - 1) // 3 - 1) % 4 + 1}",  # the quarter last reported
        weekday=_pick(_WEEKDAYS, u[7]),
        session=_pick(_SESSIONS, u[8]),
        neutral=_pick(_NEUTRAL_EVENTS, u[3]),
        good_mild=_pick(_GOOD_MILD, u[4]),
        bad_mild=_pick(_BAD_MILD, u[5]),
        post_up=_pick(_POST_UP_MILD, u[7]),
        post_down=_pick(_POST_DOWN_MILD, u[8]),
    )
    return ("news" if news else "post"), text
