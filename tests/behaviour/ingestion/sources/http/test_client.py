"""GET with a timeout and retries, shared by the HTTP sources: waits the server asks for, jittered
back-off, give-up, and refusals without retry; against a local server."""

from __future__ import annotations

import datetime as dt
import email.utils
import threading
from collections.abc import Callable

import httpx
import pytest
from pydantic import BaseModel
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from marketsense.ingestion.sources.base import SourceRejected, SourceUnavailable
from marketsense.ingestion.sources.http import YahooChartSource
from marketsense.ingestion.sources.http.client import (
    USER_AGENT,
    HttpGetter,
    excerpt,
    parse_as,
    shown,
)
from tests.behaviour.ingestion.sources.http.replies import (
    AS_OF,
    CHART,
    NOW,
    POLICY,
    Sleeps,
    chart_body,
    now,
    weekdays,
    yahoo,
)


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


def getter(
    handler: Callable[[httpx.Request], httpx.Response],
    sleeps: Sleeps,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[HttpGetter, list[httpx.Request]]:
    """A getter of `http://api.test` answered by `handler`, and the requests it made."""
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    made = HttpGetter(
        source="api",
        base_url="http://api.test/",
        headers=headers,
        policy=POLICY,
        client=client,
        sleep=sleeps,
        clock=now,
    )
    return made, requests


async def test_a_client_error_is_refused_at_once_quoting_the_body_but_not_the_query(
    sleeps: Sleeps,
) -> None:
    http, requests = getter(lambda _r: httpx.Response(404, text="no such\n  ticker"), sleeps)

    with pytest.raises(SourceRejected) as caught:
        await http.get("/v1/quote", params={"apikey": "k-123", "s": "AAPL"})

    assert str(caught.value) == "api: HTTP 404 from http://api.test/v1/quote: no such ticker"
    assert len(requests) == 1
    assert requests[0].url.params["apikey"] == "k-123"
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        pytest.param({"Retry-After": "soon"}, 0.005, 0.01, id="unreadable-retry-after"),
        pytest.param(
            {"Retry-After": email.utils.format_datetime(NOW - dt.timedelta(hours=1), usegmt=True)},
            0.0,
            0.0,
            id="retry-after-in-the-past",
        ),
        pytest.param({"x-rate-limit-reset": "4102444800"}, 0.005, 0.01, id="reset-on-a-503"),
    ],
)
async def test_waits_the_server_cannot_ask_for_fall_back_to_the_backoff(
    sleeps: Sleeps, headers: dict[str, str], low: float, high: float
) -> None:
    answers = iter([httpx.Response(503, headers=headers), httpx.Response(200, json={"ok": 1})])
    http, _ = getter(lambda _r: next(answers), sleeps)

    assert await http.get_json("/v1/x") == {"ok": 1}
    (delay,) = sleeps.delays
    assert low <= delay <= high


async def test_a_body_that_is_not_json_is_refused_with_its_start(sleeps: Sleeps) -> None:
    http, _ = getter(lambda _r: httpx.Response(200, text="<html>" + "x" * 500), sleeps)

    with pytest.raises(SourceRejected, match=r"api: malformed JSON from /v1/x: <html>x+…$"):
        await http.get_json("/v1/x")


async def test_a_request_that_cannot_be_made_is_refused_without_retry(sleeps: Sleeps) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError("garbled", request=request)

    http, requests = getter(broken, sleeps)

    with pytest.raises(SourceRejected, match=r"request to http://api\.test/v1/x failed"):
        await http.get("/v1/x")
    assert len(requests) == 1


async def test_every_request_names_the_service_and_carries_its_headers(sleeps: Sleeps) -> None:
    http, requests = getter(
        lambda _r: httpx.Response(200), sleeps, headers={"Authorization": "Bearer s3cret"}
    )

    await http.get("/v1/x")

    assert requests[0].headers["User-Agent"] == USER_AGENT
    assert requests[0].headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(http)


def test_messages_quote_urls_without_their_query_and_bodies_on_one_short_line() -> None:
    assert shown("https://api.test/v1/x?apikey=secret&s=A") == "https://api.test/v1/x"
    assert shown("https://api.test/v1/x") == "https://api.test/v1/x"
    assert excerpt("Service\n   unavailable\t now") == "Service unavailable now"
    cut = excerpt("word " * 100, limit=20)
    assert len(cut) == 20
    assert cut.endswith("…")


class _Quote(BaseModel):
    price: float


def test_an_unexpected_shape_is_refused_naming_where() -> None:
    assert parse_as(_Quote, {"price": "1.5"}, source="api", what="quote").price == 1.5
    with pytest.raises(SourceRejected, match="api: unexpected quote: price: Input should be"):
        parse_as(_Quote, {"price": "high"}, source="api", what="quote")
    with pytest.raises(SourceRejected, match="api: unexpected quote: body: "):
        parse_as(_Quote, [1, 2], source="api", what="quote")
