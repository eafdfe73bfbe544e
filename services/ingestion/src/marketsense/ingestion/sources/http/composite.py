"""One Source from a bars source and any number of text sources."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import pandas as pd

from marketsense.ingestion.sources.base import (
    TEXT_COLUMNS,
    SourceRejected,
    SourceUnavailable,
    SymbolData,
    empty_texts,
)


class BarsSource(Protocol):
    """Something that returns a symbol's clean daily bars."""

    name: str

    async def bars(
        self, symbol: str, *, as_of: dt.date, days: int
    ) -> tuple[pd.DataFrame, list[str]]:
        """The last `days` clean bars up to `as_of`, and what cleaning changed."""
        ...


class TextsSource(Protocol):
    """Something that returns a symbol's clean text items for a range of trading days."""

    name: str

    async def texts(
        self, symbol: str, *, start: dt.date, end: dt.date
    ) -> tuple[pd.DataFrame, list[str]]:
        """Clean texts that count for trading days `start` to `end`, and what cleaning changed."""
        ...


class HttpSource:
    """Bars from one source, texts from several.

    Bars failing fails the symbol. A text source failing, passing or not, only costs its texts:
    the symbol goes on with the others' and an issue line says why (sentiment is then missing,
    which downstream features mark as missing rather than neutral).
    """

    name = "http"

    def __init__(self, *, bars: BarsSource, texts: Sequence[TextsSource] = ()):
        self.bars = bars
        self.texts = tuple(texts)

    async def fetch(self, symbol: str, *, as_of: dt.date, days: int) -> SymbolData:
        """Bars up to `as_of`, then the texts of those bars' days from every text source."""
        bars, issues = await self.bars.bars(symbol, as_of=as_of, days=days)
        if bars.empty or not self.texts:
            return SymbolData(bars=bars, texts=empty_texts(), issues=issues)
        start = bars["date"].iloc[0]
        results = await asyncio.gather(
            *(self._texts_of(source, symbol, start=start, end=as_of) for source in self.texts)
        )
        frames = [frame for frame, _ in results if not frame.empty]
        for _, more in results:
            issues.extend(more)
        if not frames:
            return SymbolData(bars=bars, texts=empty_texts(), issues=issues)
        texts = pd.concat(frames, ignore_index=True)
        # Ids carry their source's prefix, so only a source repeating itself is dropped here.
        texts = texts.drop_duplicates("id").sort_values(["published_at", "id"], kind="stable")
        return SymbolData(
            bars=bars, texts=texts[list(TEXT_COLUMNS)].reset_index(drop=True), issues=issues
        )

    @staticmethod
    async def _texts_of(
        source: TextsSource, symbol: str, *, start: dt.date, end: dt.date
    ) -> tuple[pd.DataFrame, list[str]]:
        try:
            return await source.texts(symbol, start=start, end=end)
        except (SourceUnavailable, SourceRejected) as exc:
            return empty_texts(), [f"{symbol}: no texts from {source.name}: {exc}"]
