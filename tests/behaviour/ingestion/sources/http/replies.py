"""What each API answers, in its real response format, for a local server to replay; and the
sources under test pointed at that server."""

from __future__ import annotations

import datetime as dt

from pydantic import SecretStr
from pytest_httpserver import HTTPServer

from marketsense.ingestion.sources.http import (
    RetryPolicy,
    RssSource,
    XRecentSearchSource,
    YahooChartSource,
)

AS_OF = dt.date(2026, 11, 20)  # a Friday
NOW = dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC)  # two hours after that day's close
TOKEN = "secret-token-123"
CHART = "/v8/finance/chart/AAPL"
SEARCH = "/2/tweets/search/recent"
FEED = "/rss"


class Sleeps:
    """Records the waits a source asks for instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


POLICY = RetryPolicy(
    max_attempts=3, backoff_base_seconds=0.01, max_wait_seconds=5.0, timeout_seconds=0.3
)


def now() -> dt.datetime:
    """The frozen clock of these tests."""
    return NOW


def base(server: HTTPServer) -> str:
    """The server's base URL without a trailing slash."""
    return server.url_for("").rstrip("/")


def yahoo(server: HTTPServer, sleeps: Sleeps) -> YahooChartSource:
    """A Yahoo source on the local server."""
    return YahooChartSource(base(server), policy=POLICY, sleep=sleeps, clock=now)


def x_source(server: HTTPServer, sleeps: Sleeps, *, max_pages: int = 5) -> XRecentSearchSource:
    """An X source on the local server."""
    return XRecentSearchSource(
        base(server),
        bearer_token=SecretStr(TOKEN),
        max_pages=max_pages,
        policy=POLICY,
        sleep=sleeps,
        clock=now,
    )


def rss(server: HTTPServer, sleeps: Sleeps) -> RssSource:
    """An RSS source on the local server."""
    return RssSource(base(server) + FEED + "?s={symbol}", policy=POLICY, sleep=sleeps, clock=now)


def chart_body(days: list[dt.date], *, null_day: dt.date | None = None) -> dict[str, object]:
    """A `/v8/finance/chart` response as Yahoo sends it: bars stamped at the 09:30 EST open."""
    stamps = [int(dt.datetime.combine(d, dt.time(14, 30), tzinfo=dt.UTC).timestamp()) for d in days]
    closes = [100.0 + i for i in range(len(days))]

    def column(values: list[float]) -> list[float | None]:
        return [None if d == null_day else v for d, v in zip(days, values, strict=True)]

    return {
        "chart": {
            "result": [
                {
                    "meta": {
                        "currency": "USD",
                        "symbol": "AAPL",
                        "exchangeName": "NMS",
                        "fullExchangeName": "NasdaqGS",
                        "instrumentType": "EQUITY",
                        "firstTradeDate": 345479400,
                        "regularMarketTime": stamps[-1] if stamps else 0,
                        "hasPrePostMarketData": True,
                        "gmtoffset": -18000,
                        "timezone": "EST",
                        "exchangeTimezoneName": "America/New_York",
                        "regularMarketPrice": closes[-1] if closes else None,
                        "dataGranularity": "1d",
                        "range": "",
                        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "max"],
                    },
                    "timestamp": stamps,
                    "indicators": {
                        "quote": [
                            {
                                "open": column([c - 0.5 for c in closes]),
                                "high": column([c + 1 for c in closes]),
                                "low": column([c - 1 for c in closes]),
                                "close": column(closes),
                                "volume": column([1_000_000.0] * len(days)),
                            }
                        ],
                        "adjclose": [{"adjclose": column(closes)}],
                    },
                }
            ],
            "error": None,
        }
    }


def weekdays(end: dt.date, count: int) -> list[dt.date]:
    """The `count` weekdays ending at `end`."""
    days: list[dt.date] = []
    day = end
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= dt.timedelta(days=1)
    return days[::-1]


def post(post_id: str, created_at: str, text: str) -> dict[str, object]:
    """A post as X's v2 search returns it with `tweet.fields=created_at`."""
    return {
        "id": post_id,
        "text": text,
        "created_at": created_at,
        "edit_history_tweet_ids": [post_id],
    }


def page(posts: list[dict[str, object]], next_token: str | None = None) -> dict[str, object]:
    """One page of X's recent search response."""
    meta: dict[str, object] = {"result_count": len(posts)}
    if posts:
        meta |= {"newest_id": posts[0]["id"], "oldest_id": posts[-1]["id"]}
    if next_token:
        meta["next_token"] = next_token
    body: dict[str, object] = {"meta": meta}
    if posts:  # X leaves `data` out when nothing matched
        body["data"] = posts
    return body


RSS_BODY = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>AAPL headlines</title>
    <link>https://feeds.example.com/</link>
    <description>News about AAPL</description>
    <item>
      <title>Apple beats estimates &amp; raises guidance</title>
      <link>https://news.example.com/a1</link>
      <description>&lt;p&gt;Revenue rose &lt;b&gt;8%&lt;/b&gt; in the quarter.&lt;/p&gt;
      </description>
      <pubDate>Thu, 19 Nov 2026 15:04:00 GMT</pubDate>
      <guid isPermaLink="false">a1</guid>
    </item>
    <item>
      <title>Apple supplier warns on margins</title>
      <link>https://news.example.com/a2</link>
      <pubDate>Fri, 20 Nov 2026 13:30:00 +0000</pubDate>
    </item>
    <item>
      <title>Too old for the window</title>
      <guid>a0</guid>
      <pubDate>Mon, 02 Mar 2026 12:00:00 GMT</pubDate>
    </item>
  </channel>
</rss>
"""
