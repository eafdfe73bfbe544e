"""News from an RSS or Atom feed, against a local server replaying a real feed's format."""

from __future__ import annotations

import datetime as dt

import pytest
from pytest_httpserver import HTTPServer

from marketsense.ingestion.sources.base import TEXT_COLUMNS, SourceRejected
from marketsense.ingestion.sources.http import RssSource
from tests.behaviour.ingestion.sources.http.replies import AS_OF, FEED, RSS_BODY, Sleeps, rss


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
