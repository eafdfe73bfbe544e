"""Posts from X's recent search, against a local server replaying its response format."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from marketsense.ingestion.sources.base import TEXT_COLUMNS, SourceRejected
from marketsense.ingestion.sources.http import XRecentSearchSource
from tests.behaviour.ingestion.sources.http.replies import (
    AS_OF,
    NOW,
    POLICY,
    SEARCH,
    TOKEN,
    Sleeps,
    base,
    page,
    post,
    x_source,
)


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
    # From the session before the 16th (Friday 13th), within the 7-day reach...
    assert first.args["start_time"] == "2026-11-13T23:01:00Z"
    # ...to the close of as_of (16:00 New York is 21:00 UTC in November).
    assert first.args["end_time"] == "2026-11-20T21:00:00Z"
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_x_posts_after_an_early_close_count_for_the_next_session(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    posts = [
        post("1", "2026-11-26T15:00:00.000Z", "$AAPL on Thanksgiving"),  # for Friday the 27th
        post("2", "2026-11-27T17:30:00.000Z", "$AAPL before the 13:00 close"),  # the 27th too
        post("3", "2026-11-27T18:30:00.000Z", "$AAPL after the early close"),  # Monday the 30th
        post("4", "2026-11-30T20:30:00.000Z", "$AAPL before Monday's close"),
    ]
    server.expect_request(SEARCH).respond_with_json(page(posts))
    source = XRecentSearchSource(
        base(server),
        bearer_token=SecretStr(TOKEN),
        policy=POLICY,
        sleep=sleeps,
        clock=lambda: dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC),
    )

    texts, _ = await source.texts("AAPL", start=dt.date(2026, 11, 30), end=dt.date(2026, 11, 30))

    assert texts["id"].tolist() == ["x:3", "x:4"]
    assert set(texts["date"]) == {dt.date(2026, 11, 30)}
    [(request, _)] = server.log
    # From 13:00 New York (18:00 UTC), the earliest close, on the session before...
    assert request.args["start_time"] == "2026-11-27T18:00:00Z"
    # ...to 16:00 New York on the last day.
    assert request.args["end_time"] == "2026-11-30T21:00:00Z"


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
