"""Daily bars from Yahoo Finance's chart API (`/v8/finance/chart/{symbol}`)."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import quote

import httpx
import pandas as pd
from pydantic import BaseModel, Field

from marketsense.common.calendar import ExchangeCalendar, exchange_calendar
from marketsense.ingestion.sources.base import SourceRejected, SymbolData, empty_texts
from marketsense.ingestion.sources.http.client import (
    Clock,
    HttpGetter,
    RetryPolicy,
    Sleep,
    parse_as,
    utc_now,
)
from marketsense.ingestion.sources.validate import clean_bars, rejecting, restrict_bars

YAHOO_BASE_URL = "https://query1.finance.yahoo.com"
"""Where Yahoo's chart API lives."""


class _Quote(BaseModel):
    open: list[float | None] = Field(default_factory=list)
    high: list[float | None] = Field(default_factory=list)
    low: list[float | None] = Field(default_factory=list)
    close: list[float | None] = Field(default_factory=list)
    volume: list[float | None] = Field(default_factory=list)


class _Indicators(BaseModel):
    quote: list[_Quote] = Field(default_factory=list)


class _Meta(BaseModel):
    gmtoffset: int = 0
    """Offset of the exchange's time from UTC, in seconds; bars are stamped at the open."""


class _Result(BaseModel):
    meta: _Meta = Field(default_factory=_Meta)
    timestamp: list[int] = Field(default_factory=list)
    indicators: _Indicators = Field(default_factory=_Indicators)


class _Error(BaseModel):
    code: str = "error"
    description: str = ""


class _Chart(BaseModel):
    result: list[_Result] | None = None
    error: _Error | None = None


class _ChartResponse(BaseModel):
    chart: _Chart


class YahooChartSource:
    """Daily OHLCV bars from Yahoo's chart API; a Source with bars and no texts."""

    name = "yahoo"

    def __init__(
        self,
        base_url: str = YAHOO_BASE_URL,
        *,
        policy: RetryPolicy | None = None,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = utc_now,
        calendar: ExchangeCalendar | None = None,
    ):
        self.calendar = calendar or exchange_calendar()
        self._http = HttpGetter(
            source=self.name,
            base_url=base_url,
            policy=policy,
            client=client,
            sleep=sleep,
            clock=clock,
        )

    async def fetch(self, symbol: str, *, as_of: dt.date, days: int) -> SymbolData:
        """The last `days` clean daily bars up to `as_of`, without texts."""
        bars, issues = await self.bars(symbol, as_of=as_of, days=days)
        return SymbolData(bars=bars, texts=empty_texts(), issues=issues)

    async def bars(
        self, symbol: str, *, as_of: dt.date, days: int
    ) -> tuple[pd.DataFrame, list[str]]:
        """The last `days` clean daily bars up to `as_of`, and what cleaning changed."""
        # Calendar days that surely hold `days` trading days, holidays included.
        start = as_of - dt.timedelta(days=days * 7 // 5 + 10)
        params: dict[str, str | int] = {
            "period1": _epoch(start),
            "period2": _epoch(as_of + dt.timedelta(days=1)),
            "interval": "1d",
        }
        data = await self._http.get_json(
            f"/v8/finance/chart/{quote(symbol, safe='')}", params=params
        )
        with rejecting(f"yahoo: the chart of {symbol}"):
            frame = _bars_frame(data, symbol=symbol)
            bars, issues = clean_bars(frame, symbol=symbol, calendar=self.calendar, source="yahoo")
            return restrict_bars(bars, as_of=as_of, days=days), issues


def _epoch(day: dt.date) -> int:
    """Seconds since the epoch at midnight UTC of `day`."""
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp())


def _bars_frame(data: object, *, symbol: str) -> pd.DataFrame:
    """Raw bars (nulls as NaN) from a chart response; an error or odd shape rejects."""
    chart = parse_as(_ChartResponse, data, source="yahoo", what="chart response").chart
    if chart.error is not None:
        raise SourceRejected(
            f"yahoo: {symbol}: {chart.error.code}: {chart.error.description}".rstrip(": ")
        )
    if not chart.result:
        raise SourceRejected(f"yahoo: {symbol}: the chart response has no result")
    result = chart.result[0]
    quote_ = result.indicators.quote[0] if result.indicators.quote else _Quote()
    n = len(result.timestamp)
    columns = {
        "open": quote_.open,
        "high": quote_.high,
        "low": quote_.low,
        "close": quote_.close,
        "volume": quote_.volume,
    }
    if n == 0:
        columns = {name: [] for name in columns}
    uneven = [name for name, values in columns.items() if len(values) != n]
    if uneven:
        raise SourceRejected(
            f"yahoo: {symbol}: {', '.join(uneven)} do not have one value per timestamp ({n})"
        )
    # Out-of-range stamps become NaT, which cleaning drops as rows without a date.
    seconds = pd.Series([t + result.meta.gmtoffset for t in result.timestamp], dtype="float64")
    local = pd.to_datetime(seconds, unit="s", errors="coerce")
    return pd.DataFrame(
        {
            "date": local.dt.date,
            **{name: pd.Series(values, dtype="float64") for name, values in columns.items()},
        }
    )
