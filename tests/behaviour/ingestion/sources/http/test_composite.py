"""One source from Yahoo's bars and the texts of X and RSS: a text source failing costs only its
texts, bars failing fails the symbol."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from marketsense.ingestion.sources.base import SourceRejected
from marketsense.ingestion.sources.http import HttpSource
from tests.behaviour.ingestion.sources.http.replies import (
    AS_OF,
    CHART,
    FEED,
    RSS_BODY,
    SEARCH,
    Sleeps,
    chart_body,
    page,
    post,
    rss,
    weekdays,
    x_source,
    yahoo,
)


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
