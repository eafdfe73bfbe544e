"""Sources that fetch bars and texts from real HTTP APIs."""

from marketsense.ingestion.sources.http.client import RetryPolicy
from marketsense.ingestion.sources.http.composite import BarsSource, HttpSource, TextsSource
from marketsense.ingestion.sources.http.rss import RssSource
from marketsense.ingestion.sources.http.x import X_BASE_URL, XRecentSearchSource
from marketsense.ingestion.sources.http.yahoo import YAHOO_BASE_URL, YahooChartSource

__all__ = [
    "X_BASE_URL",
    "YAHOO_BASE_URL",
    "BarsSource",
    "HttpSource",
    "RetryPolicy",
    "RssSource",
    "TextsSource",
    "XRecentSearchSource",
    "YahooChartSource",
]
