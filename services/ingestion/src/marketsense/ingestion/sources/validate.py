"""Cleaning of bars and texts from any source: drop or fix bad rows, and say why.

Every function is vectorised over the frame and returns the cleaned frame with one issue line per
kind of change (how many rows, and why), for the ingest task's notes.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from marketsense.ingestion.sources.base import BAR_COLUMNS, TEXT_COLUMNS, SourceRejected

PRICE_COLUMNS = ("open", "high", "low", "close")
"""Bar columns that hold prices, which must be positive."""

REQUIRED_TEXT_COLUMNS = ("id", "published_at", "text")
"""Columns every texts input needs; `date` is derived and `source` defaulted when absent."""

DEFAULT_MAX_CHARS = 1000
"""Texts longer than this are truncated to it."""

MARKET_TIMEZONE = ZoneInfo("America/New_York")
"""Timezone of the market's close, which decides the trading day a text counts for."""

MARKET_CLOSE = dt.time(16, 0)
"""Texts published at or after this local time count for the next trading day."""


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _texts(count: int) -> str:
    return f"{count} text" if count == 1 else f"{count} texts"


def _to_datetimes(values: pd.Series) -> pd.Series:
    """Naive midnight timestamps from ISO strings, dates or timestamps, each read in its own time
    zone; unreadable become NaT."""
    try:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    except ValueError:
        # Offsets differ between rows (a file spanning a daylight-saving change): read each alone.
        parsed = pd.to_datetime(values.map(_wall_time), errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize()


def _wall_time(value: object) -> pd.Timestamp | None:
    """One value as a naive timestamp of its own zone's wall clock; None if unreadable."""
    stamp = pd.to_datetime(pd.Series([value]), errors="coerce", format="ISO8601").iloc[0]
    if pd.isna(stamp):
        return None
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def _dates(values: pd.Series) -> pd.Series:
    """`datetime.date` objects from timestamps that are all set."""
    return pd.Series(values.dt.date, index=values.index, dtype="object")


def trading_day(published_at: pd.Series) -> pd.Series:
    """The trading day each UTC timestamp counts for, as `datetime.date`.

    Its New York date, moved to the next weekday when published at or after the 16:00 close or on
    a weekend. Exchange holidays are not modelled: an item from a holiday counts for that day.
    """
    local = published_at.dt.tz_convert(MARKET_TIMEZONE)
    after_close = (local.dt.hour * 60 + local.dt.minute) >= MARKET_CLOSE.hour * 60
    nominal = local.dt.tz_localize(None).dt.normalize() + pd.to_timedelta(
        after_close.astype("int64"), unit="D"
    )
    days = np.busday_offset(nominal.to_numpy().astype("datetime64[D]"), 0, roll="forward")
    return pd.Series(pd.DatetimeIndex(days).date, index=published_at.index, dtype="object")


def clean_bars(frame: pd.DataFrame, *, symbol: str) -> tuple[pd.DataFrame, list[str]]:
    """Bars with BAR_COLUMNS only, valid rows only, one per date, sorted; and what changed.

    Missing columns reject the symbol. Rows with an unreadable date, a missing or non-positive
    price, a missing or negative volume, or a high below the low are dropped; a high or low that
    does not bracket the open and close is widened; of duplicate dates the last row is kept.
    """
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceRejected(f"{symbol}: bars lack columns {', '.join(missing)}")
    issues: list[str] = []
    bars = frame[list(BAR_COLUMNS)].copy()
    # Dates stay timestamps while cleaning, so sorting and comparing them is vectorised.
    bars["date"] = _to_datetimes(bars["date"])
    for column in (*PRICE_COLUMNS, "volume"):
        bars[column] = pd.to_numeric(bars[column], errors="coerce").astype("float64")

    def drop(mask: pd.Series, why: str) -> None:
        nonlocal bars
        count = int(mask.sum())
        if count:
            issues.append(f"{symbol}: dropped {_rows(count)} {why}")
            bars = bars[~mask]

    drop(bars["date"].isna(), "with an unreadable date")
    drop(bars[list(PRICE_COLUMNS)].isna().any(axis=1), "with a missing price")
    drop((bars[list(PRICE_COLUMNS)] <= 0).any(axis=1), "with a zero or negative price")
    drop(bars["volume"].isna(), "with a missing volume")
    drop(bars["volume"] < 0, "with a negative volume")
    drop(bars["high"] < bars["low"], "with the high below the low")

    top = bars[["open", "close"]].max(axis=1)
    bottom = bars[["open", "close"]].min(axis=1)
    widened = int(((bars["high"] < top) | (bars["low"] > bottom)).sum())
    if widened:
        issues.append(
            f"{symbol}: widened the high or low of {_rows(widened)} to take in the open and close"
        )
        bars["high"] = bars["high"].where(bars["high"] >= top, top)
        bars["low"] = bars["low"].where(bars["low"] <= bottom, bottom)

    drop(bars["date"].duplicated(keep="last"), "repeating a later row's date (kept the last)")

    out_of_order = int((bars["date"] < bars["date"].cummax()).sum())
    if out_of_order:
        issues.append(
            f"{symbol}: sorted the bars by date ({_rows(out_of_order)} were out of order)"
        )
        bars = bars.sort_values("date", kind="stable")
    bars["date"] = _dates(bars["date"])
    return bars.reset_index(drop=True), issues


def clean_texts(
    frame: pd.DataFrame,
    *,
    symbol: str,
    max_chars: int = DEFAULT_MAX_CHARS,
    default_source: str = "unknown",
) -> tuple[pd.DataFrame, list[str]]:
    """Texts with TEXT_COLUMNS, non-empty, at most `max_chars` long, one per id; and what changed.

    `published_at` is read as UTC (naive times are taken as UTC); `date` is derived with
    `trading_day` where absent or unreadable; `source` defaults to `default_source`. Rows without
    an id or a readable publication time are dropped; bodies are stripped of surrounding
    whitespace, empty ones dropped and longer ones truncated; of duplicate ids the first is kept.
    """
    missing = [c for c in REQUIRED_TEXT_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceRejected(f"{symbol}: texts lack columns {', '.join(missing)}")
    issues: list[str] = []
    texts = frame.copy()

    def drop(mask: pd.Series, why: str) -> None:
        nonlocal texts
        count = int(mask.sum())
        if count:
            issues.append(f"{symbol}: dropped {_texts(count)} {why}")
            texts = texts[~mask]

    ids = texts["id"].astype("str").str.strip()
    texts["id"] = ids.where(texts["id"].notna(), "")
    drop(texts["id"] == "", "without an id")
    texts["published_at"] = pd.to_datetime(
        texts["published_at"], errors="coerce", utc=True, format="ISO8601"
    )
    drop(texts["published_at"].isna(), "without a readable publication time")
    texts["text"] = texts["text"].astype("str").str.strip().where(texts["text"].notna(), "")
    drop(texts["text"] == "", "with an empty body")

    too_long = texts["text"].str.len() > max_chars
    count = int(too_long.sum())
    if count:
        issues.append(f"{symbol}: truncated {_texts(count)} longer than {max_chars} characters")
        texts["text"] = texts["text"].str.slice(0, max_chars)

    duplicated = texts["id"].duplicated(keep="first")
    drop(duplicated, "repeating an earlier id (kept the first)")

    derived = trading_day(texts["published_at"])
    if "date" in texts.columns:
        given = _to_datetimes(texts["date"])
        texts["date"] = _dates(given).where(given.notna(), derived)
    else:
        texts["date"] = derived
    if "source" in texts.columns:
        texts["source"] = texts["source"].astype("str").where(texts["source"].notna(), "")
        texts["source"] = texts["source"].where(texts["source"].str.strip() != "", default_source)
    else:
        texts["source"] = default_source
    texts = texts.sort_values(["published_at", "id"], kind="stable")
    return texts[list(TEXT_COLUMNS)].reset_index(drop=True), issues


def restrict_bars(bars: pd.DataFrame, *, as_of: dt.date, days: int) -> pd.DataFrame:
    """The last `days` clean bars dated up to `as_of`."""
    if days <= 0:
        return bars.iloc[:0]
    return bars[bars["date"] <= as_of].tail(days).reset_index(drop=True)


def restrict_texts(texts: pd.DataFrame, *, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The clean texts that count for trading days from `start` to `end`, inclusive."""
    within = (texts["date"] >= start) & (texts["date"] <= end)
    return texts[within].reset_index(drop=True)
