"""The source interface: daily bars and text items for one symbol, cleaned, with reasons."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from marketsense.common.errors import NonRetryableError, RetryableError
from marketsense.common.features import BAR_COLUMNS

__all__ = [
    "BAR_COLUMNS",
    "TEXT_COLUMNS",
    "Source",
    "SourceRejected",
    "SourceUnavailable",
    "SymbolData",
]

TEXT_COLUMNS = ("id", "published_at", "date", "source", "text")
"""Columns of a texts frame: a stable id, UTC publication time, the trading day it counts for,
the source name (`news`, `post`, `x`, `rss`, ...) and the text itself."""


@dataclass(frozen=True)
class SymbolData:
    """What a source returns for one symbol: bars, texts, and what cleaning changed."""

    bars: pd.DataFrame
    """Daily bars, sorted by date, one row per session of the exchange, ending at most at
    `as_of`."""
    texts: pd.DataFrame
    """Text items published up to `as_of` (may be empty, never None), columns TEXT_COLUMNS."""
    issues: list[str] = field(default_factory=list)
    """One line per row dropped or value changed, saying why; recorded on the task."""


class Source(Protocol):
    """Something that returns a symbol's bars and texts for a day."""

    name: str

    async def fetch(self, symbol: str, *, as_of: dt.date, days: int) -> SymbolData:
        """Up to `days` trading days of bars ending at `as_of`, and the texts of those days."""
        ...


class SourceUnavailable(RetryableError):
    """A passing failure: timeout, 5xx, rate limit; trying again later may work."""


class SourceRejected(NonRetryableError):
    """The source will not give this symbol's data (unknown symbol, 4xx, unusable data)."""


def empty_texts() -> pd.DataFrame:
    """A texts frame with no rows and the right columns."""
    return pd.DataFrame({c: pd.Series(dtype="object") for c in TEXT_COLUMNS})
