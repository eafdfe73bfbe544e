"""Features from daily bars and scored texts, vectorised, under a named and versioned schema.

A row for (symbol, day) depends only on the bars and texts up to that day, and is the same
whether computed from a daily run's window, a backfill's range or a whole training history: the
exponential averages start `WARMUP_BARS` bars before the first row, long enough that where they
started no longer shows (docs/features.md gives the definitions and the derivation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from scipy.signal import lfilter

FEATURE_SCHEMA = "technical-sentiment-v2"
"""Name of the feature schema this module computes."""

SENTIMENT_SCHEMAS = ("technical-sentiment-v1", FEATURE_SCHEMA)
"""Schemas whose sentiment columns are computed as this one's: a sentiment model made for any of
them feeds this schema (v2 changed the technical columns only)."""

TECHNICAL_COLUMNS: tuple[str, ...] = (
    "ret_1d",
    "ret_5d",
    "ret_20d",
    "volatility_20d",
    "rsi_14",
    "macd",
    "macd_signal",
    "volume_z_20d",
    "gap_overnight",
)
"""Columns computed from bars alone."""

SENTIMENT_COLUMNS: tuple[str, ...] = (
    "sentiment_mean",
    "sentiment_count",
    "sentiment_pos_share",
    "sentiment_neg_share",
    "sentiment_strongest",
    "has_sentiment",
)
"""Aggregates of the day's scored texts. A day without texts has count 0, has_sentiment 0 and
NaN for the rest: missing, not a neutral 0 that a model would mistake for calm news."""

FEATURE_COLUMNS: tuple[str, ...] = TECHNICAL_COLUMNS + SENTIMENT_COLUMNS
"""Columns of a feature row, in the order models receive them."""

BAR_COLUMNS = ("date", "open", "high", "low", "close", "volume")
"""Columns of a daily-bars table."""

WARMUP_BARS = 450
"""Bars before a symbol's first feature row that only warm up the exponential averages.

The slowest average, RSI's (Wilder, alpha 1/14), forgets its start by (13/14)^450 = 3e-15, so a
row differs by less than 1e-9 (RSI points, or MACD as a share of price) between a window that
starts 450 bars earlier and the whole history; measured worst case 3e-12 (docs/features.md)."""

MIN_BARS = WARMUP_BARS + 1
"""Bars a symbol needs for one feature row: the warm-up and the row's own day."""

POLARITY_CUTOFF = 0.25
"""A text scoring above this counts as positive, below its negative as negative."""

RSI_ALPHA = 1 / 14
"""Wilder's smoothing of RSI's average gain and loss (period 14)."""

RSI_PERIOD = 14
"""Bars over which RSI is missing when the close never moved."""

MACD_FAST_ALPHA, MACD_SLOW_ALPHA, MACD_SIGNAL_ALPHA = 2 / 13, 2 / 27, 2 / 10
"""EMA spans 12 and 26 of the close, and 9 of MACD for its signal line."""

WINDOW = 20
"""Trailing bars of the 20-day return, volatility and volume z-score."""

_FEATURE_INDEX = pd.Index(FEATURE_COLUMNS, dtype=object)

Precision = Literal["float32", "float64"]
"""Float type of computed features: float32 as stored and served, float64 to compare paths."""


def compute_features(
    bars: pd.DataFrame,
    scored_texts: pd.DataFrame | None = None,
    *,
    dtype: Precision = "float32",
) -> pd.DataFrame:
    """Feature rows of one symbol for every bar after the warm-up, indexed by date.

    `scored_texts` has one row per text with columns `date` and `score` (in [-1, 1]).
    """
    dates = bars["date"]
    if not dates.is_monotonic_increasing:
        bars = bars.sort_values("date", kind="stable")
        dates = bars["date"]
    first = min(WARMUP_BARS, len(bars))
    index = pd.Index(dates.to_numpy()[first:], name="date")
    technical = _technical(bars, np.zeros(1, dtype=np.int64), first=first)
    values = np.empty((len(index), len(FEATURE_COLUMNS)), dtype=dtype)
    values[:, : len(TECHNICAL_COLUMNS)] = technical
    values[:, len(TECHNICAL_COLUMNS) :] = _daily_sentiment(scored_texts, index)
    return pd.DataFrame(values, index=index, columns=_FEATURE_INDEX, copy=False)


def compute_feature_panel(
    bars: pd.DataFrame | Mapping[str, pd.DataFrame],
    scored_texts: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    *,
    dtype: Precision = "float32",
) -> pd.DataFrame:
    """Feature rows of many symbols at once: columns symbol, date and the features.

    `bars` is a long frame with a `symbol` column (or one frame per symbol); `scored_texts`
    likewise with `symbol`, `date` and `score`. Each symbol's rows are exactly what
    `compute_features` gives for it; symbols keep the order they first appear in.
    """
    frame = _long(bars)
    codes, symbols = pd.factorize(frame["symbol"], sort=False)
    days = _day_numbers(frame["date"])
    order = _panel_order(codes, days)
    if order is not None:
        frame, codes, days = frame.iloc[order], codes[order], days[order]
    starts = np.flatnonzero(np.diff(codes, prepend=-1))
    keep = np.flatnonzero(_offsets(starts, len(codes)) >= WARMUP_BARS)
    technical = _technical(frame, starts, rows=keep)
    values = np.empty((len(keep), len(FEATURE_COLUMNS)), dtype=dtype)
    values[:, : len(TECHNICAL_COLUMNS)] = technical
    values[:, len(TECHNICAL_COLUMNS) :] = _panel_sentiment(
        scored_texts, symbols, keys=_row_keys(codes[keep], days[keep])
    )
    result = pd.DataFrame(values, columns=_FEATURE_INDEX, copy=False)
    result.insert(0, "date", frame["date"].array.take(keep))
    result.insert(0, "symbol", frame["symbol"].array.take(keep))
    return result


def _long(frames: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One long frame with a `symbol` column from a long frame or a frame per symbol."""
    if isinstance(frames, pd.DataFrame):
        return frames
    if not frames:
        return pd.DataFrame({"symbol": [], **{c: [] for c in BAR_COLUMNS}})
    return pd.concat([f.assign(symbol=s) for s, f in frames.items()], ignore_index=True)


def _day_numbers(dates: pd.Series) -> np.ndarray:
    """Dates (date objects or datetime64) as int64 days since the epoch."""
    values = dates.to_numpy()
    if values.dtype == object:
        values = values.astype("datetime64[D]")
    return values.astype("datetime64[D]").astype(np.int64)


def _row_keys(codes: np.ndarray, days: np.ndarray) -> np.ndarray:
    """One int64 per (symbol code, day), ordered as the panel's rows are."""
    # Days since 1970 fit in +-2**30 for any date pandas can hold; codes go in the upper bits.
    keys: np.ndarray = codes.astype(np.int64) * (1 << 32) + (days + (1 << 31))
    return keys


def _panel_order(codes: np.ndarray, days: np.ndarray) -> np.ndarray | None:
    """Row order grouping symbols (first appearance) with dates ascending; None if already so."""
    step_code, step_day = np.diff(codes), np.diff(days)
    if ((step_code == 0) & (step_day >= 0) | (step_code > 0)).all():
        return None
    order: np.ndarray = np.lexsort((days, codes))
    return order


def _technical(
    bars: pd.DataFrame, starts: np.ndarray, *, first: int = 0, rows: np.ndarray | None = None
) -> np.ndarray:
    """Technical features of the given rows (default: from `first` on), one column each.

    `bars` holds one or more symbols one after the other, sorted by date, each beginning at one
    of `starts`; nothing crosses from one symbol into the next.
    """
    close = bars["close"].to_numpy(dtype="float64")
    volume = bars["volume"].to_numpy(dtype="float64")
    opening = bars["open"].to_numpy(dtype="float64")
    at = np.arange(first, len(close)) if rows is None else rows
    offset = _offsets(starts, len(close))
    prev = _shift(close, offset, 1)
    delta = close - prev
    gain = _ewm(np.clip(delta, 0, None), starts, RSI_ALPHA)[at]
    loss = _ewm(np.clip(-delta, 0, None), starts, RSI_ALPHA)[at]
    moved = _Trailing(at, offset, RSI_PERIOD).sum((np.abs(delta) > 0).astype("float64"))
    with np.errstate(divide="ignore", invalid="ignore"):
        # Neither gains nor losses over the period: RSI is undefined, not 100.
        rsi = np.where(moved > 0, 100 * gain / (gain + loss), np.nan)
        macd = (_ewm(close, starts, MACD_FAST_ALPHA) - _ewm(close, starts, MACD_SLOW_ALPHA)) / close
        log_return = np.log(close) - np.log(prev)
        volume_z = _volume_z(volume, at, offset)
    out = np.empty((len(at), len(TECHNICAL_COLUMNS)))
    out[:, 0] = close[at] / prev[at] - 1
    out[:, 1] = close[at] / _shift(close, offset, 5)[at] - 1
    out[:, 2] = close[at] / _shift(close, offset, WINDOW)[at] - 1
    out[:, 3] = _Trailing(at, offset, WINDOW).mean_and_std(log_return)[1] * np.sqrt(252)
    out[:, 4] = rsi
    out[:, 5] = macd[at]
    out[:, 6] = _ewm(macd, starts, MACD_SIGNAL_ALPHA)[at]
    out[:, 7] = volume_z
    out[:, 8] = opening[at] / prev[at] - 1
    return out


def _offsets(starts: np.ndarray, n: int) -> np.ndarray:
    """Each row's position within its symbol."""
    lengths = np.diff(np.append(starts, n))
    offset: np.ndarray = np.arange(n) - np.repeat(starts, lengths)
    return offset


def _shift(values: np.ndarray, offset: np.ndarray, periods: int) -> np.ndarray:
    """Values `periods` rows earlier within the same symbol, NaN where there is none."""
    shifted = np.full_like(values, np.nan)
    shifted[periods:] = values[:-periods]
    shifted[offset < periods] = np.nan
    return shifted


def _ewm(values: np.ndarray, starts: np.ndarray, alpha: float) -> np.ndarray:
    """Exponentially weighted mean per symbol, as pandas' `ewm(alpha, adjust=False,
    ignore_na=True)`: seeded by the symbol's first value, missing values skipped and the mean
    carried over them, NaN before the first value."""
    valid = ~np.isnan(values)
    if not len(values) or valid.all():
        return _ewm_dense(values, starts, alpha)
    # Filter the present values only, then carry each mean over the gaps that follow it.
    before = np.concatenate(([0], np.cumsum(valid)))
    dense_starts = np.unique(before[starts][before[starts] < before[-1]])
    dense = _ewm_dense(values[valid], dense_starts, alpha) if len(dense_starts) else values[valid]
    last = np.maximum.accumulate(np.where(valid, before[1:] - 1, -1))
    own = last >= before[np.repeat(starts, np.diff(np.append(starts, len(values))))]
    out = np.full_like(values, np.nan)
    out[own] = dense[last[own]]
    return out


def _ewm_dense(values: np.ndarray, starts: np.ndarray, alpha: float) -> np.ndarray:
    """`_ewm` of values without gaps, in one linear filter over all symbols."""
    decay = 1 - alpha
    if not len(values):
        return values.copy()
    filtered, _ = lfilter([alpha], [1, -decay], values, zi=[decay * values[0]])
    if len(starts) < 2:
        out: np.ndarray = filtered
        return out
    # The filter ran on from the previous symbol; the error that left at a symbol's first row
    # decays by `decay` a row, so subtracting it gives each symbol its own seed.
    error = filtered[starts[1:]] - values[starts[1:]]
    offset = _offsets(starts, len(values))
    carried = np.repeat(np.concatenate(([0.0], error)), np.diff(np.append(starts, len(values))))
    corrected: np.ndarray = filtered - carried * np.exp(offset * np.log(decay))
    return corrected


class _Trailing:
    """Sums over each requested row's trailing window, added in a fixed order (the row, then
    each earlier one), so a row's value depends on its window alone, never on longer history."""

    def __init__(self, at: np.ndarray, offset: np.ndarray, window: int) -> None:
        self.window = window
        # Only the rows asked for and their windows are summed: a daily run asks for one row.
        self.low = max(int(at[0]) - window + 1, 0) if len(at) else 0
        self.rows = at - self.low
        # A window that would reach into the previous symbol (or before the data) is incomplete.
        self.partial = offset[at] < window - 1

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of each row's window; NaN when incomplete or with a NaN inside."""
        part = values[self.low :]
        n, w = len(part), self.window
        total = np.full(n, np.nan)
        if n >= w:
            acc = part[w - 1 :].astype("float64")
            for k in range(1, w):
                acc += part[w - 1 - k : n - k]
            total[w - 1 :] = acc
        out: np.ndarray = total[self.rows]
        out[self.partial] = np.nan
        return out

    def mean_and_std(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sample standard deviation (ddof 1) of each row's window, in two passes."""
        part = values[self.low :]
        n, w = len(part), self.window
        mean = self.sum(values) / w
        if n < w:
            return mean, mean.copy()
        full_mean = np.full(n, np.nan)
        full_mean[self.rows] = mean
        centre = full_mean[w - 1 :]
        acc = np.zeros(n - w + 1)
        deviation = np.empty(n - w + 1)
        for k in range(w):
            np.subtract(part[w - 1 - k : n - k], centre, out=deviation)
            np.multiply(deviation, deviation, out=deviation)
            acc += deviation
        squares = np.full(n, np.nan)
        squares[w - 1 :] = acc
        return mean, np.sqrt(squares[self.rows] / (w - 1))


def _volume_z(volume: np.ndarray, at: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Today's volume against the trailing 20 bars' mean and sample deviation; NaN when the
    volume did not vary or was zero on one of those days (no trading, or no volume data)."""
    trailing = _Trailing(at, offset, WINDOW)
    mean, spread = trailing.mean_and_std(volume)
    traded = trailing.sum((volume > 0).astype("float64")) == WINDOW
    usable = traded & (spread > 0)
    return np.where(usable, (volume[at] - mean) / np.where(usable, spread, 1.0), np.nan)


def sentiment_aggregates(scored_texts: pd.DataFrame | None, dates: pd.Index) -> pd.DataFrame:
    """Per-day aggregates of text scores for the given dates; explicit gaps where none."""
    daily = _daily_sentiment(scored_texts, dates)
    return pd.DataFrame(daily, index=dates, columns=list(SENTIMENT_COLUMNS))


def _daily_sentiment(scored_texts: pd.DataFrame | None, dates: pd.Index) -> np.ndarray:
    """`sentiment_aggregates` as an array."""
    if scored_texts is None or not len(scored_texts):
        return _aggregate(np.empty(0, dtype=np.int64), np.empty(0), len(dates))
    rows = dates.get_indexer(pd.Index(scored_texts["date"]))
    return _aggregate(rows, scored_texts["score"].to_numpy(dtype="float64"), len(dates))


def _panel_sentiment(
    scored_texts: pd.DataFrame | Mapping[str, pd.DataFrame] | None,
    symbols: pd.Index,
    *,
    keys: np.ndarray,
) -> np.ndarray:
    """Sentiment aggregates of the panel rows with the given (symbol code, day) keys, sorted."""
    texts = None if scored_texts is None else _long(scored_texts)
    if texts is None or not len(texts):
        return _aggregate(np.empty(0, dtype=np.int64), np.empty(0), len(keys))
    text_codes, text_symbols = pd.factorize(texts["symbol"], sort=False)
    codes = symbols.get_indexer(text_symbols)[text_codes]
    text_keys = _row_keys(codes, _day_numbers(texts["date"]))
    rows = np.full(len(texts), -1)
    if len(keys):
        found = np.minimum(np.searchsorted(keys, text_keys), len(keys) - 1)
        rows = np.where((codes >= 0) & (keys[found] == text_keys), found, -1)
    return _aggregate(rows, texts["score"].to_numpy(dtype="float64"), len(keys))


def _aggregate(rows: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Sentiment columns of `n` days from each text's day row (-1: no such day) and score."""
    keep = rows >= 0
    rows, scores = rows[keep], scores[keep]
    count = np.bincount(rows, minlength=n).astype("float64")
    daily = np.full((n, len(SENTIMENT_COLUMNS)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        daily[:, 0] = np.bincount(rows, weights=scores, minlength=n) / count
        daily[:, 2] = np.bincount(rows, weights=scores > POLARITY_CUTOFF, minlength=n) / count
        daily[:, 3] = np.bincount(rows, weights=scores < -POLARITY_CUTOFF, minlength=n) / count
    daily[:, 1] = count
    daily[:, 5] = count > 0
    # The strongest score, signed; the first of equally strong ones.
    order = np.lexsort((-np.abs(scores), rows))  # stable: ties keep their order
    firsts = order[np.diff(rows[order], prepend=-1) != 0]
    daily[rows[firsts], 4] = scores[firsts]
    return daily


def next_day_up(bars: pd.DataFrame) -> pd.Series:
    """Training label: whether the next bar's close is above this bar's, indexed by date."""
    close = bars.sort_values("date").set_index("date")["close"]
    return (close.shift(-1) > close).where(close.shift(-1).notna())
