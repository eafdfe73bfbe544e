"""Where ingestion gets market data and texts: simulated, files, or real HTTP APIs."""

from marketsense.ingestion.sources.base import (
    BAR_COLUMNS,
    TEXT_COLUMNS,
    Source,
    SourceRejected,
    SourceUnavailable,
    SymbolData,
    empty_texts,
)
from marketsense.ingestion.sources.factory import build_source, simulated_market
from marketsense.ingestion.sources.files import FileSource
from marketsense.ingestion.sources.http import (
    HttpSource,
    RetryPolicy,
    RssSource,
    XRecentSearchSource,
    YahooChartSource,
)
from marketsense.ingestion.sources.simulated import SimulatedMarket
from marketsense.ingestion.sources.validate import clean_bars, clean_texts

__all__ = [
    "BAR_COLUMNS",
    "TEXT_COLUMNS",
    "FileSource",
    "HttpSource",
    "RetryPolicy",
    "RssSource",
    "SimulatedMarket",
    "Source",
    "SourceRejected",
    "SourceUnavailable",
    "SymbolData",
    "XRecentSearchSource",
    "YahooChartSource",
    "build_source",
    "clean_bars",
    "clean_texts",
    "empty_texts",
    "simulated_market",
]
