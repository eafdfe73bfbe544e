"""Daily bars from Yahoo's chart API, against a local server replaying its response format."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pytest_httpserver import HTTPServer

from marketsense.ingestion.sources.base import BAR_COLUMNS, SourceRejected
from tests.behaviour.ingestion.sources.http.replies import (
    AS_OF,
    CHART,
    Sleeps,
    chart_body,
    weekdays,
    yahoo,
)


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


async def test_yahoo_timestamps_out_of_range_are_dropped_as_rows_without_a_date(
    server: HTTPServer, sleeps: Sleeps
) -> None:
    body = chart_body(weekdays(AS_OF, 25))
    body["chart"]["result"][0]["timestamp"][-1] = 10**30  # type: ignore[index]
    server.expect_request(CHART).respond_with_json(body)

    data = await yahoo(server, sleeps).fetch("AAPL", as_of=AS_OF, days=21)

    assert len(data.bars) == 21
    assert data.bars["date"].iloc[-1] == weekdays(AS_OF, 2)[0]
    assert data.issues == ["AAPL: dropped 1 row without a date"]
