"""News items about a symbol from an RSS or Atom feed whose URL names the symbol."""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import hashlib
import html
import io
import re
import time
from typing import Any
from urllib.parse import quote

import feedparser  # type: ignore[import-untyped]
import httpx
import pandas as pd

from marketsense.common.calendar import ExchangeCalendar, exchange_calendar
from marketsense.ingestion.sources.base import SourceRejected, empty_texts
from marketsense.ingestion.sources.http.client import Clock, HttpGetter, RetryPolicy, Sleep, utc_now
from marketsense.ingestion.sources.validate import DEFAULT_MAX_CHARS, clean_texts, restrict_texts

_TAG = re.compile(r"<[^>]+>")


class RssSource:
    """Entries of the feed at `url_template.format(symbol=...)`: title and summary as text."""

    name = "rss"

    def __init__(
        self,
        url_template: str,
        *,
        max_chars: int = DEFAULT_MAX_CHARS,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
        calendar: ExchangeCalendar | None = None,
    ):
        if "{symbol}" not in url_template:
            raise ValueError("an RSS url_template needs a {symbol} placeholder")
        self.url_template = url_template
        self.max_chars = max_chars
        self.calendar = calendar or exchange_calendar()
        self._http = HttpGetter(
            source=self.name, policy=policy, client=client, sleep=sleep, clock=clock
        )

    async def texts(
        self, symbol: str, *, start: dt.date, end: dt.date
    ) -> tuple[pd.DataFrame, list[str]]:
        """Clean feed entries that count for trading days `start` to `end`, and what changed."""
        response = await self._http.get(self.url_template.format(symbol=quote(symbol, safe="")))
        # A stream, never a string: feedparser would fetch a string that looks like a URL.
        feed = feedparser.parse(
            io.BytesIO(response.content),
            response_headers={"content-type": response.headers.get("content-type", "")},
        )
        issues: list[str] = []
        if feed.bozo:
            reason = f"{type(feed.bozo_exception).__name__}: {feed.bozo_exception}"
            if not feed.entries:
                raise SourceRejected(f"rss: the feed for {symbol} is not readable: {reason}")
            issues.append(
                f"{symbol}: rss: the feed is not well-formed ({reason}); "
                f"read {len(feed.entries)} entries anyway"
            )
        if not feed.entries:
            if not feed.version:
                raise SourceRejected(f"rss: the response for {symbol} is not an RSS or Atom feed")
            return empty_texts(), issues
        frame = pd.DataFrame([_row(entry) for entry in feed.entries])
        texts, cleaned = clean_texts(
            frame,
            symbol=symbol,
            max_chars=self.max_chars,
            default_source="rss",
            calendar=self.calendar,
        )
        return restrict_texts(texts, start=start, end=end), issues + cleaned


def _row(entry: dict[str, Any]) -> dict[str, object]:
    """id, published_at and text of one feed entry."""
    # dict.get: feedparser's own get() warns when it falls back from `updated` to `published`.
    parsed = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    published = (
        dt.datetime.fromtimestamp(calendar.timegm(parsed), dt.UTC)
        if isinstance(parsed, time.struct_time)
        else None
    )
    title = _plain(dict.get(entry, "title", ""))
    summary = _plain(dict.get(entry, "summary", ""))
    text = title if not summary or summary == title else f"{title}. {summary}" if title else summary
    key = dict.get(entry, "id") or dict.get(entry, "link")
    if not key:
        key = hashlib.sha256(f"{title}|{parsed}".encode()).hexdigest()[:16]
    return {"id": f"rss:{key}", "published_at": published, "text": text}


def _plain(value: object) -> str:
    """Text without HTML tags or entities."""
    return html.unescape(_TAG.sub(" ", str(value))).strip() if value else ""
