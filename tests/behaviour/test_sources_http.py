"""The HTTP sources against a local server replaying each API's real response format."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from marketsense.ingestion.sources.base import (
    BAR_COLUMNS,
    TEXT_COLUMNS,
    SourceRejected,
    SourceUnavailable,
)
from marketsense.ingestion.sources.http import (
    HttpSource,
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


@pytest.fixture
def sleeps() -> Sleeps:
    """A fresh recorder of back-off waits."""
    return Sleeps()


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    """The local server; a request no handler expected fails the test."""
    yield httpserver
    httpserver.check_assertions()


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


# Yahoo --------------------------------------------------------------------------------------------


async def test_yahoo_bars_come_from_the_chart_response_with_null_rows_dropped(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    days = weekdays(AS_OF, 30)
    server.expect_request(CHART).respond_with_json(chart_body(days, null_day=days[-3]))

    data = await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)

    assert list(data.bars.columns) == list(BAR_COLUMNS)
    assert len(data.bars) == 21
    assert data.bars["date"].iloc[-1] == AS_OF  # 14:30 UTC is 09:30 in New York, same day
    assert days[-3] not in set(data.bars["date"])
    assert data.bars["close"].iloc[-1] == 129.0
    assert data.issues == ["AAPL: dropped 1 row with a missing price"]
    assert data.texts.empty
    (request, _), *_ = server.log
    assert request.args["interval"] == "1d"
    assert int(request.args["period2"]) == int(dt.datetime(2026, 11, 21, tzinfo=dt.UTC).timestamp())
    assert int(request.args["period1"]) < int(
        dt.datetime.combine(days[-21], dt.time(), tzinfo=dt.UTC).timestamp()
    )
    assert "python-httpx" not in request.headers["User-Agent"]


async def test_yahoo_unknown_symbol_is_rejected_without_retry(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    body = {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }
    server.expect_request(CHART).respond_with_json(body, status=404)

    with pytest.raises(SourceRejected, match=r"HTTP 404 .*No data found, symbol may be delisted"):
        await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)
    assert len(server.log) == 1
    assert sleeps.delays == []


async def test_yahoo_chart_error_in_a_200_response_is_rejected(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    body = {"chart": {"result": None, "error": {"code": "Bad Request", "description": "Invalid"}}}
    server.expect_request(CHART).respond_with_json(body)
    with pytest.raises(SourceRejected, match="AAPL: Bad Request: Invalid"):
        await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)


async def test_yahoo_empty_result_gives_empty_bars(server: HTTPServer, sleeps: Sleeps) -> None:
    body = chart_body([])
    result = body["chart"]["result"][0]  # type: ignore[index]
    del result["timestamp"]  # Yahoo leaves it out when the range has no trading
    result["indicators"] = {"quote": [{}], "adjclose": [{}]}
    server.expect_request(CHART).respond_with_json(body)

    data = await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)

    assert data.bars.empty
    assert list(data.bars.columns) == list(BAR_COLUMNS)
    assert data.issues == []


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<html>Will be right back</html>", "malformed JSON"),
        ('{"chart": {"result": [{"timestamp": [1', "malformed JSON"),
        (json.dumps({"finance": {"error": "gone"}}), "unexpected chart response: chart"),
        (
            json.dumps({"chart": {"result": [{"timestamp": [1], "indicators": {"quote": [{}]}}]}}),
            "do not have one value per timestamp",
        ),
        (
            json.dumps({"chart": {"result": [{"timestamp": ["x"]}], "error": None}}),
            "unexpected chart response: chart.result.0.timestamp.0",
        ),
    ],
)
async def test_yahoo_malformed_bodies_are_rejected_not_crashes(
    server: HTTPServer, sleeps: Sleeps, body: str, match: str
) -> None:
    server.expect_request(CHART).respond_with_data(body, content_type="application/json")
    with pytest.raises(SourceRejected, match=match):
        await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)
    assert len(server.log) == 1


async def test_yahoo_timestamps_out_of_range_are_dropped_as_unreadable_dates(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    body = chart_body(weekdays(AS_OF, 25))
    body["chart"]["result"][0]["timestamp"][-1] = 10**30  # type: ignore[index]
    server.expect_request(CHART).respond_with_json(body)

    data = await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)

    assert len(data.bars) == 21
    assert data.bars["date"].iloc[-1] == weekdays(AS_OF, 2)[0]
    assert data.issues == ["AAPL: dropped 1 row with an unreadable date"]


async def test_a_429_with_retry_after_seconds_waits_that_long_then_succeeds(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    server.expect_oneshot_request(CHART).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"}
    )
    server.expect_request(CHART).respond_with_json(chart_body(weekdays(AS_OF, 25)))

    data = await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)

    assert len(data.bars) == 21
    assert sleeps.delays == [1.0]
    assert len(server.log) == 2


async def test_a_503_with_retry_after_as_an_http_date_waits_until_then(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    when = email.utils.format_datetime(NOW + dt.timedelta(seconds=3), usegmt=True)
    server.expect_oneshot_request(CHART).respond_with_data(
        "maintenance", status=503, headers={"Retry-After": when}
    )
    server.expect_request(CHART).respond_with_json(chart_body(weekdays(AS_OF, 25)))

    await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)

    assert sleeps.delays == [3.0]


async def test_a_requested_wait_longer_than_the_cap_is_capped(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    server.expect_oneshot_request(CHART).respond_with_data(
        "", status=429, headers={"Retry-After": "3600"}
    )
    server.expect_request(CHART).respond_with_json(chart_body(weekdays(AS_OF, 25)))
    await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)
    assert sleeps.delays == [POLICY.max_wait_seconds]


async def test_server_errors_are_retried_with_jittered_backoff_then_succeed(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    server.expect_oneshot_request(CHART).respond_with_data("oops", status=500)
    server.expect_oneshot_request(CHART).respond_with_data("bad gateway", status=502)
    server.expect_request(CHART).respond_with_json(chart_body(weekdays(AS_OF, 25)))

    data = await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)

    assert len(data.bars) == 21
    assert len(server.log) == 3
    first, second = sleeps.delays
    assert 0.005 <= first <= 0.01  # base 0.01 s times a jitter in [0.5, 1]
    assert 0.01 <= second <= 0.02  # doubled


async def test_server_errors_on_every_attempt_make_the_source_unavailable(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    server.expect_request(CHART).respond_with_data("down", status=503)
    with pytest.raises(SourceUnavailable, match="HTTP 503; gave up after 3 attempts"):
        await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)
    assert len(server.log) == 3
    assert len(sleeps.delays) == 2


async def test_a_server_slower_than_the_timeout_is_retried_then_unavailable(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    release = threading.Event()

    def stall(request: Request) -> Response:
        release.wait(timeout=2.0)  # far past the client's 0.3 s timeout
        return Response("late", status=200)

    server.expect_request(CHART).respond_with_handler(stall)
    try:
        with pytest.raises(SourceUnavailable, match=r"timed out after 0\.3 s; gave up after 3"):
            await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)
    finally:
        release.set()  # let the server answer the abandoned requests and move on
    assert len(sleeps.delays) == 2


async def test_nothing_listening_is_a_passing_failure(sleeps: Sleeps) -> None:
    source = YahooChartSource("http://127.0.0.1:9", policy=POLICY, sleep=sleeps, clock=now)
    with pytest.raises(SourceUnavailable, match="connection failed"):
        await source.fetch("AAPL", as_of=AS_OF, days=21)
    assert len(sleeps.delays) == 2


# X ------------------------------------------------------------------------------------------------


async def test_x_follows_pagination_and_sends_the_documented_query(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    pages = {
        None: page([post("3", "2026-11-20T15:00:00.000Z", "$AAPL ripping")], "t1"),
        "t1": page([post("2", "2026-11-19T14:00:00.000Z", "$AAPL meh")], "t2"),
        "t2": page([post("1", "2026-11-18T14:00:00.000Z", "$AAPL dumping")]),
    }

    def search(request: Request) -> Response:
        body = pages[request.args.get("next_token")]
        return Response(json.dumps(body), content_type="application/json")

    server.expect_request(SEARCH).respond_with_handler(search)

    texts, issues = await x_source(server, sleeps).texts(
        "AAPL", start=dt.date(2026, 11, 16), end=AS_OF
    )

    assert list(texts.columns) == list(TEXT_COLUMNS)
    assert texts["id"].tolist() == ["x:1", "x:2", "x:3"]
    assert set(texts["source"]) == {"x"}
    assert texts["date"].tolist() == [dt.date(2026, 11, 18), dt.date(2026, 11, 19), AS_OF]
    assert issues == []
    requests = [request for request, _ in server.log]
    assert [r.args.get("next_token") for r in requests] == [None, "t1", "t2"]
    first = requests[0]
    assert first.args["query"] == "$AAPL -is:retweet lang:en"
    assert first.args["max_results"] == "100"
    assert first.args["tweet.fields"] == "created_at"
    # From the close before the 16th (Friday 13th, 21:00 UTC), within the 7-day reach...
    assert first.args["start_time"] == "2026-11-13T23:01:00Z"
    # ...to the close of as_of (16:00 New York is 21:00 UTC in November).
    assert first.args["end_time"] == "2026-11-20T21:00:00Z"
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_x_stops_at_the_page_limit_and_says_so(server: HTTPServer, sleeps: Sleeps) -> None:
    server.expect_request(SEARCH).respond_with_json(
        page([post("9", "2026-11-20T15:00:00.000Z", "$AAPL again")], "more")
    )
    texts, issues = await x_source(server, sleeps, max_pages=2).texts(
        "AAPL", start=dt.date(2026, 11, 16), end=AS_OF
    )
    assert len(server.log) == 2
    assert texts["id"].tolist() == ["x:9"]  # the same post twice is kept once
    assert issues[0] == "AAPL: x: stopped after 2 pages; older posts skipped"
    assert issues[1] == "AAPL: dropped 1 text repeating an earlier id (kept the first)"


async def test_x_no_matches_gives_empty_texts(server: HTTPServer, sleeps: Sleeps) -> None:
    server.expect_request(SEARCH).respond_with_json({"meta": {"result_count": 0}})
    texts, issues = await x_source(server, sleeps).texts("AAPL", start=AS_OF, end=AS_OF)
    assert texts.empty
    assert list(texts.columns) == list(TEXT_COLUMNS)
    assert issues == []


async def test_x_days_beyond_the_recent_search_reach_make_no_request(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    texts, issues = await x_source(server, sleeps).texts(
        "AAPL", start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 30)
    )
    assert texts.empty
    assert issues == []
    assert server.log == []


async def test_x_rate_limit_waits_until_the_reset_time(server: HTTPServer, sleeps: Sleeps) -> None:
    reset = int(NOW.timestamp()) + 2
    server.expect_oneshot_request(SEARCH).respond_with_json(
        {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank"},
        status=429,
        headers={
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset),
        },
    )
    server.expect_request(SEARCH).respond_with_json(
        page([post("1", "2026-11-20T15:00:00.000Z", "$AAPL")])
    )

    texts, _ = await x_source(server, sleeps).texts("AAPL", start=AS_OF, end=AS_OF)

    assert texts["id"].tolist() == ["x:1"]
    assert sleeps.delays == [2.0]


async def test_x_unauthorized_is_rejected_at_once_and_the_token_is_never_logged(
    server: HTTPServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    server.expect_oneshot_request(SEARCH).respond_with_data("busy", status=503)
    server.expect_request(SEARCH).respond_with_json(
        {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
        status=401,
    )
    source = x_source(server, sleeps)
    with (
        caplog.at_level(logging.DEBUG),
        pytest.raises(SourceRejected, match=r"HTTP 401 .*Unauthorized") as caught,
    ):
        await source.texts("AAPL", start=AS_OF, end=AS_OF)
    assert len(server.log) == 2  # the 503 was retried, the 401 was not
    assert "retrying in" in caplog.text
    assert TOKEN not in caplog.text
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(source.__dict__)


async def test_x_malformed_json_is_rejected(server: HTTPServer, sleeps: Sleeps) -> None:
    server.expect_request(SEARCH).respond_with_data(
        '{"data": [{"id": "1", "te', content_type="application/json"
    )
    with pytest.raises(SourceRejected, match="x: malformed JSON"):
        await x_source(server, sleeps).texts("AAPL", start=AS_OF, end=AS_OF)


async def test_x_errors_without_data_are_rejected(server: HTTPServer, sleeps: Sleeps) -> None:
    server.expect_request(SEARCH).respond_with_json(
        {"errors": [{"message": "Invalid query", "detail": "cashtag operator not allowed"}]}
    )
    with pytest.raises(SourceRejected, match="cashtag operator not allowed"):
        await x_source(server, sleeps).texts("AAPL", start=AS_OF, end=AS_OF)


# RSS ----------------------------------------------------------------------------------------------


async def test_rss_entries_become_texts_with_plain_text_and_stable_ids(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    server.expect_request(FEED, query_string="s=AAPL").respond_with_data(
        RSS_BODY, content_type="application/rss+xml; charset=utf-8"
    )

    texts, issues = await rss(server, sleeps).texts("AAPL", start=dt.date(2026, 11, 16), end=AS_OF)

    assert list(texts.columns) == list(TEXT_COLUMNS)
    assert texts["id"].tolist() == ["rss:a1", "rss:https://news.example.com/a2"]
    assert texts["text"].tolist() == [
        "Apple beats estimates & raises guidance. Revenue rose  8%  in the quarter.",
        "Apple supplier warns on margins",
    ]
    assert texts["date"].tolist() == [dt.date(2026, 11, 19), AS_OF]
    assert set(texts["source"]) == {"rss"}
    assert issues == []


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('{"not": "xml"}', r"rss: the feed for AAPL is not readable: SAXParseException: .+"),
        ("<rss><channel><title>x</title><oops></rss>", r"not readable: SAXParseException"),
        ("<html><body>Sign in to continue</body></html>", r"not an RSS or Atom feed"),
    ],
)
async def test_rss_that_is_not_a_feed_is_rejected_with_the_reason(
    server: HTTPServer, sleeps: Sleeps, body: str, match: str
) -> None:
    server.expect_request(FEED).respond_with_data(body, content_type="application/rss+xml")
    with pytest.raises(SourceRejected, match=match):
        await rss(server, sleeps).texts("AAPL", start=AS_OF, end=AS_OF)
    assert len(server.log) == 1


async def test_rss_not_well_formed_but_with_entries_is_read_with_an_issue(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    body = RSS_BODY.replace("</channel>", "<oops></channel>")
    server.expect_request(FEED).respond_with_data(body, content_type="application/rss+xml")
    texts, issues = await rss(server, sleeps).texts("AAPL", start=dt.date(2026, 11, 16), end=AS_OF)
    assert len(texts) == 2
    assert len(issues) == 1
    assert issues[0].startswith("AAPL: rss: the feed is not well-formed (")
    assert issues[0].endswith("read 3 entries anyway")


async def test_rss_with_no_items_gives_empty_texts(server: HTTPServer, sleeps: Sleeps) -> None:
    body = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    server.expect_request(FEED).respond_with_data(body, content_type="application/rss+xml")
    texts, issues = await rss(server, sleeps).texts("AAPL", start=AS_OF, end=AS_OF)
    assert texts.empty
    assert issues == []


def test_rss_url_template_must_name_the_symbol() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        RssSource("https://feeds.example.com/rss")


# Composition --------------------------------------------------------------------------------------


async def test_http_source_combines_bars_with_texts_from_every_text_source(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    server.expect_request(CHART).respond_with_json(chart_body(weekdays(AS_OF, 30)))
    server.expect_request(SEARCH).respond_with_json(
        page([post("7", "2026-11-19T16:00:00.000Z", "$AAPL strong")])
    )
    server.expect_request(FEED).respond_with_data(RSS_BODY, content_type="application/rss+xml")
    source = HttpSource(
        bars=yahoo(server, sleeps), texts=[x_source(server, sleeps), rss(server, sleeps)]
    )

    data = await source.fetch("AAPL", as_of=AS_OF, days=21)

    assert source.name == "http"
    assert len(data.bars) == 21
    assert data.texts["id"].tolist() == ["rss:a1", "x:7", "rss:https://news.example.com/a2"]
    assert data.texts["published_at"].is_monotonic_increasing
    assert data.issues == []


async def test_a_failing_text_source_costs_only_its_texts(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    server.expect_request(CHART).respond_with_json(chart_body(weekdays(AS_OF, 30)))
    server.expect_request(SEARCH).respond_with_data("down", status=503)
    server.expect_request(FEED).respond_with_data(RSS_BODY, content_type="application/rss+xml")
    source = HttpSource(
        bars=yahoo(server, sleeps), texts=[x_source(server, sleeps), rss(server, sleeps)]
    )

    data = await source.fetch("AAPL", as_of=AS_OF, days=21)

    assert len(data.bars) == 21
    assert len(data.texts) == 2
    assert set(data.texts["source"]) == {"rss"}
    assert len(data.issues) == 1
    assert data.issues[0].startswith("AAPL: no texts from x: x: HTTP 503; gave up after 3")


async def test_failing_bars_fail_the_symbol(server: HTTPServer, sleeps: Sleeps) -> None:
    server.expect_request(CHART).respond_with_data("nope", status=403)
    source = HttpSource(bars=yahoo(server, sleeps), texts=[rss(server, sleeps)])
    with pytest.raises(SourceRejected, match="HTTP 403"):
        await source.fetch("AAPL", as_of=AS_OF, days=21)
    assert len(server.log) == 1  # no text source was asked
