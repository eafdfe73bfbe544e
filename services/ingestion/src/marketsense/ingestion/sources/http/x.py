"""Posts about a symbol from X's recent search (`GET /2/tweets/search/recent`, API v2)."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
from pydantic import BaseModel, Field, SecretStr

from marketsense.common.calendar import ExchangeCalendar, exchange_calendar
from marketsense.ingestion.sources.base import SourceRejected, empty_texts
from marketsense.ingestion.sources.http.client import (
    Clock,
    HttpGetter,
    RetryPolicy,
    Sleep,
    parse_as,
    utc_now,
)
from marketsense.ingestion.sources.validate import DEFAULT_MAX_CHARS, clean_texts, restrict_texts

X_BASE_URL = "https://api.x.com"
"""Where X's API lives."""

RECENT_SEARCH_WINDOW = dt.timedelta(days=7)
"""How far back recent search reaches; older posts need the full-archive endpoint."""

END_TIME_MARGIN = dt.timedelta(seconds=30)
"""X refuses an `end_time` less than 10 seconds before the request."""

MARKET_TIMEZONE = ZoneInfo("America/New_York")
"""Timezone of the US exchanges, whose symbols X's cashtags name."""

EARLIEST_CLOSE = dt.time(13, 0)
"""The earliest a US session closes (early closes); the search starts there on the session
before the first day, and the calendar then keeps the posts after that session's close."""

LATEST_CLOSE = dt.time(16, 0)
"""The regular close; the search ends there on the last day."""


class _Post(BaseModel):
    id: str
    text: str = ""
    created_at: str | None = None


class _Meta(BaseModel):
    result_count: int = 0
    next_token: str | None = None


class _Page(BaseModel):
    data: list[_Post] = Field(default_factory=list)
    meta: _Meta = Field(default_factory=_Meta)
    errors: list[dict[str, object]] = Field(default_factory=list)


class XRecentSearchSource:
    """English, non-retweet posts with the symbol's cashtag, following pagination."""

    name = "x"

    def __init__(
        self,
        base_url: str = X_BASE_URL,
        *,
        bearer_token: SecretStr,
        max_pages: int = 5,
        max_chars: int = DEFAULT_MAX_CHARS,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
        calendar: ExchangeCalendar | None = None,
    ):
        self.max_pages = max_pages
        self.calendar = calendar or exchange_calendar()
        self.max_chars = max_chars
        self._clock = clock
        self._http = HttpGetter(
            source=self.name,
            base_url=base_url,
            headers={"Authorization": f"Bearer {bearer_token.get_secret_value()}"},
            policy=policy,
            client=client,
            sleep=sleep,
            clock=clock,
        )

    async def texts(
        self, symbol: str, *, start: dt.date, end: dt.date
    ) -> tuple[pd.DataFrame, list[str]]:
        """Clean posts that count for trading days `start` to `end`, and what cleaning changed.

        Recent search reaches back 7 days only, so older days of the window get no posts.
        """
        now = self._clock()
        previous = self.calendar.previous_session(start)
        since = max(
            _local(previous, EARLIEST_CLOSE), now - RECENT_SEARCH_WINDOW + dt.timedelta(minutes=1)
        )
        until = min(_local(end, LATEST_CLOSE), now - END_TIME_MARGIN)
        if until <= since:
            return empty_texts(), []
        params: dict[str, str | int] = {
            "query": f"${symbol} -is:retweet lang:en",
            "max_results": 100,
            "start_time": _rfc3339(since),
            "end_time": _rfc3339(until),
            "tweet.fields": "created_at",
        }
        posts: list[_Post] = []
        issues: list[str] = []
        for _ in range(self.max_pages):
            data = await self._http.get_json("/2/tweets/search/recent", params=params)
            page = parse_as(_Page, data, source=self.name, what="search response")
            if page.errors and not page.data:
                first = page.errors[0]
                detail = first.get("detail") or first.get("message") or first
                raise SourceRejected(f"x: search for {symbol} failed: {detail}")
            posts.extend(page.data)
            if not page.meta.next_token:
                break
            params["next_token"] = page.meta.next_token
        else:
            issues.append(f"{symbol}: x: stopped after {self.max_pages} pages; older posts skipped")
        if not posts:
            return empty_texts(), issues
        frame = pd.DataFrame(
            {
                "id": [f"x:{post.id}" for post in posts],
                "published_at": [post.created_at for post in posts],
                "text": [post.text for post in posts],
            }
        )
        texts, cleaned = clean_texts(
            frame,
            symbol=symbol,
            max_chars=self.max_chars,
            default_source="x",
            calendar=self.calendar,
        )
        return restrict_texts(texts, start=start, end=end), issues + cleaned


def _local(day: dt.date, time: dt.time) -> dt.datetime:
    """A New York wall-clock time of `day`, in UTC."""
    return dt.datetime.combine(day, time, tzinfo=MARKET_TIMEZONE).astimezone(dt.UTC)


def _rfc3339(moment: dt.datetime) -> str:
    """A UTC time as X wants it: `2026-11-20T21:00:00Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
