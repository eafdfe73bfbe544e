"""Bring-your-own data: bars and texts from CSV or Parquet files under one folder.

    <root>/bars/<SYMBOL>.parquet  or  <root>/bars/<SYMBOL>.csv    columns BAR_COLUMNS
    <root>/texts/<SYMBOL>.parquet or  <root>/texts/<SYMBOL>.csv   columns id, published_at, text
                                                                  [, source] [, date]

A symbol without a bars file is rejected; one without a texts file has no texts. See
docs/data-sources.md for the full rules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import pandas as pd

from marketsense.common.calendar import ExchangeCalendar, exchange_calendar
from marketsense.common.tasks import keep_notes
from marketsense.ingestion.sources.base import SourceRejected, SymbolData, empty_texts
from marketsense.ingestion.sources.validate import (
    DEFAULT_MAX_CHARS,
    clean_bars,
    clean_texts,
    rejecting,
    restrict_bars,
    restrict_texts,
)

SAFE_SYMBOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_^=]*")
"""Symbols that can name a file: no separators, no leading dot."""


class FileSource:
    """Bars and texts per symbol from files under `root` (Parquet preferred over CSV), cleaned
    against the sessions of `calendar` (default XNYS)."""

    name = "files"

    def __init__(
        self,
        root: Path,
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        calendar: ExchangeCalendar | None = None,
    ):
        self.root = root
        self.max_chars = max_chars
        self.calendar = calendar or exchange_calendar()

    async def fetch(self, symbol: str, *, as_of: dt.date, days: int) -> SymbolData:
        """The last `days` clean bars up to `as_of` and the clean texts of those days."""
        return await asyncio.to_thread(self._load, symbol, as_of, days)

    def _load(self, symbol: str, as_of: dt.date, days: int) -> SymbolData:
        if not SAFE_SYMBOL.fullmatch(symbol):
            raise SourceRejected(f"files: {symbol!r} cannot name a file")
        bars_path = self._find("bars", symbol)
        if bars_path is None:
            raise SourceRejected(
                f"files: no bars for {symbol}: expected {self.root / 'bars' / symbol}.parquet"
                " or .csv"
            )
        with rejecting(f"files: {bars_path.name} for {symbol}"):
            bars, issues = clean_bars(
                _read(bars_path, symbol), symbol=symbol, calendar=self.calendar, source="files"
            )
            bars = restrict_bars(bars, as_of=as_of, days=days)
        texts_path = self._find("texts", symbol)
        if texts_path is None or bars.empty:
            return SymbolData(bars=bars, texts=empty_texts(), issues=issues)
        try:
            with rejecting(f"files: {texts_path.name} for {symbol}"):
                texts, text_issues = clean_texts(
                    _read(texts_path, symbol),
                    symbol=symbol,
                    max_chars=self.max_chars,
                    default_source="file",
                    calendar=self.calendar,
                )
                texts = restrict_texts(texts, start=bars["date"].iloc[0], end=as_of)
        except Exception as exc:
            # The bars' notes belong to the symbol's task even though its texts fail it.
            keep_notes(exc, issues)
            raise
        return SymbolData(bars=bars, texts=texts, issues=issues + text_issues)

    def _find(self, kind: str, symbol: str) -> Path | None:
        """The Parquet or CSV file of a symbol, if there is one."""
        for suffix in (".parquet", ".csv"):
            path = self.root / kind / f"{symbol}{suffix}"
            if path.is_file():
                return path
        return None


def _read(path: Path, symbol: str) -> pd.DataFrame:
    """A frame from a CSV or Parquet file; an unreadable file rejects the symbol."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        # Ids stay text: "0012" and "12" are different items.
        return pd.read_csv(path, dtype={"id": "str"})
    except (OSError, ValueError) as exc:
        raise SourceRejected(f"files: cannot read {path.name} for {symbol}: {exc}") from exc
