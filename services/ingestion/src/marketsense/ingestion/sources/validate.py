"""Cleaning of bars and texts from any source: read every value, drop or fix bad rows, say why.

Every function is vectorised over the frame and returns the cleaned frame with one issue line per
kind of change (how many rows, and why), for the ingest task's notes. A value that is present but
cannot be read (a US-style date, "1,234" as a number) rejects the symbol with its column, row and
the value itself: guessing would give wrong data, and trying again would fail the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd

from marketsense.common.calendar import ExchangeCalendar, exchange_calendar
from marketsense.common.errors import MarketsenseError
from marketsense.ingestion.sources.base import BAR_COLUMNS, TEXT_COLUMNS, SourceRejected

PRICE_COLUMNS = ("open", "high", "low", "close")
"""Bar columns that hold prices, which must be positive."""

REQUIRED_TEXT_COLUMNS = ("id", "published_at", "text")
"""Columns every texts input needs; `date` is derived and `source` defaulted when absent."""

DEFAULT_MAX_CHARS = 1000
"""Texts longer than this are truncated to it."""

LISTED_DAYS = 5
"""Days named in a note at most; the rest are counted."""

_WALL_TIME = r"^(.*[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
"""An ISO 8601 timestamp ending in a UTC offset; the first group is its wall-clock part."""


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _texts(count: int) -> str:
    return f"{count} text" if count == 1 else f"{count} texts"


def listed_days(days: list[dt.date]) -> str:
    """Days as ISO dates, at most LISTED_DAYS of them, then how many more."""
    shown = ", ".join(day.isoformat() for day in days[:LISTED_DAYS])
    more = len(days) - LISTED_DAYS
    return f"{shown} and {more} more" if more > 0 else shown


@contextmanager
def rejecting(what: str) -> Iterator[None]:
    """Turn any failure to read or clean `what` into SourceRejected: a file or response that
    pandas cannot handle fails the same way every time, so it must not be retried."""
    try:
        yield
    except MarketsenseError:
        raise
    except Exception as exc:
        raise SourceRejected(f"{what}: cannot be read: {type(exc).__name__}: {exc}") from exc


def _present(values: pd.Series) -> pd.Series:
    """Whether each value is given: not null and not blank text."""
    blank = values.map(lambda v: isinstance(v, str) and not v.strip()).astype("bool")
    return values.notna() & ~blank


def _to_datetimes(values: pd.Series) -> pd.Series:
    """Naive midnight timestamps from ISO strings, dates or timestamps, each on the wall clock of
    its own UTC offset; unreadable values become NaT."""
    try:
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    except ValueError:
        # Offsets differ between rows (a file spanning a daylight-saving change): the day is the
        # one on each row's own wall clock, so the offset is dropped rather than converted.
        text = values.map(lambda v: v if isinstance(v, str) else str(v) if pd.notna(v) else None)
        wall = text.str.strip().str.replace(_WALL_TIME, r"\1", regex=True)
        parsed = pd.to_datetime(wall, errors="coerce", format="ISO8601")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize()


def _dates(values: pd.Series) -> pd.Series:
    """`datetime.date` objects from timestamps that are all set."""
    return pd.Series(values.dt.date, index=values.index, dtype="object")


def _refuse_unreadable(
    raw: pd.Series, parsed: pd.Series, *, where: str, column: str, kind: str
) -> None:
    """Raise SourceRejected naming the first value given but not read, its column and row."""
    missing = parsed.isna().to_numpy()
    if not missing.any():
        return
    unreadable = missing.copy()
    unreadable[missing] = _present(raw[missing]).to_numpy()
    count = int(unreadable.sum())
    if not count:
        return
    position = int(unreadable.argmax())
    hint = " (use ISO 8601, e.g. 2024-03-15)" if kind == "date" else ""
    others = f"; {count} of {len(raw)} rows of that column are unreadable" if count > 1 else ""
    raise SourceRejected(
        f"{where}: column {column}, row {position + 1}: cannot read "
        f"{str(raw.iloc[position])!r} as a {kind}{hint}{others}"
    )


def read_bar_values(frame: pd.DataFrame, *, where: str) -> pd.DataFrame:
    """BAR_COLUMNS with dates as naive midnight timestamps and the rest as float64; missing values
    become NaT or NaN, and a value given but unreadable raises SourceRejected. Rows are numbered
    from 1, the first row of data (a file's header is not counted)."""
    bars = frame[list(BAR_COLUMNS)].reset_index(drop=True)
    out = pd.DataFrame({"date": _to_datetimes(bars["date"])})
    _refuse_unreadable(bars["date"], out["date"], where=where, column="date", kind="date")
    for column in (*PRICE_COLUMNS, "volume"):
        out[column] = pd.to_numeric(bars[column], errors="coerce").astype("float64")
        _refuse_unreadable(bars[column], out[column], where=where, column=column, kind="number")
    return out


def clean_bars(
    frame: pd.DataFrame,
    *,
    symbol: str,
    calendar: ExchangeCalendar | None = None,
    source: str = "bars",
) -> tuple[pd.DataFrame, list[str]]:
    """Bars with BAR_COLUMNS only, valid rows only, one per session, sorted; and what changed.

    Missing columns, or a value given but unreadable, reject the symbol (`source` names where
    the bars came from in that message). Rows without a date, with a missing or non-positive
    price, a missing or negative volume, or a high below the low are dropped, and so are rows
    dated on a day `calendar` (default XNYS) does not trade; a high or low that does not bracket
    the open and close is widened; of duplicate dates the last row is kept.
    """
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise SourceRejected(f"{symbol}: bars lack columns {', '.join(missing)}")
    calendar = calendar or exchange_calendar()
    issues: list[str] = []
    # Dates stay timestamps while cleaning, so sorting and comparing them is vectorised.
    bars = read_bar_values(frame, where=f"{source}: bars for {symbol}")

    def drop(mask: pd.Series, why: str) -> None:
        nonlocal bars
        count = int(mask.sum())
        if count:
            issues.append(f"{symbol}: dropped {_rows(count)} {why}")
            bars = bars[~mask]

    drop(bars["date"].isna(), "without a date")
    drop(bars[list(PRICE_COLUMNS)].isna().any(axis=1), "with a missing price")
    drop((bars[list(PRICE_COLUMNS)] <= 0).any(axis=1), "with a zero or negative price")
    drop(bars["volume"].isna(), "with a missing volume")
    drop(bars["volume"] < 0, "with a negative volume")
    drop(bars["high"] < bars["low"], "with the high below the low")
    closed = ~calendar.session_mask(bars["date"])
    days = sorted(set(_dates(bars["date"][closed])))
    drop(closed, f"dated on days {calendar.name} does not trade: {listed_days(days)}")

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
    calendar: ExchangeCalendar | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Texts with TEXT_COLUMNS, non-empty, at most `max_chars` long, one per id; and what changed.

    `published_at` is read as UTC (naive times are taken as UTC); `date`, where absent or
    unreadable, is the session of `calendar` (default XNYS) the text counts for: after a close, on
    a weekend or a holiday, the next one; a date given on a day without a session moves to the
    next session; `source` defaults to `default_source`. Rows without
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

    calendar = calendar or exchange_calendar()
    derived = calendar.session_of(texts["published_at"])
    if "date" in texts.columns:
        given = _to_datetimes(texts["date"])
        # Midnight UTC of a day counts for that day if it trades, else for the next session.
        rolled = calendar.session_of(given.fillna(pd.Timestamp(0)).dt.tz_localize("UTC"))
        texts["date"] = rolled.where(given.notna(), derived)
    else:
        texts["date"] = derived
    drop(texts["date"].isna(), f"published beyond the {calendar.name} calendar")
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
