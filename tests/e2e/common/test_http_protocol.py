"""A served process closes connections whose request head does not arrive in time (slowloris),
and still answers a head that comes in several parts within it; measured with raw sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import running_services

HEADER_TIMEOUT = 1.0

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    """The port of the monitoring service, run as its own process on the embedded runtime with
    a 1 s header timeout and a 30 s keep-alive."""
    env = {
        "MARKETSENSE_HOME": str(tmp_path / "home"),
        "MARKETSENSE_HTTP_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "MARKETSENSE_HTTP_KEEP_ALIVE_SECONDS": "30",
    }
    with running_services(("monitoring",), env, tmp_path) as services:
        async with httpx.AsyncClient() as client:
            await services.wait_ready(client)
        yield services.ports["monitoring"]


async def seconds_until_closed(connection: Connection) -> float:
    """How long the server takes to close the connection, reading whatever it sends first."""
    reader, writer = connection
    started = time.monotonic()
    async with asyncio.timeout(10):
        while await reader.read(65536):
            pass
    writer.close()
    return time.monotonic() - started


async def answer(connection: Connection) -> bytes:
    """The start of the next response on the connection."""
    async with asyncio.timeout(10):
        return await connection[0].read(65536)


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: t\r\n", id="half-the-headers"),
        pytest.param(b"GE", id="part-of-the-request-line"),
    ],
)
async def test_a_connection_idle_before_its_head_is_complete_is_closed_after_the_timeout(
    port: int, sent: bytes
) -> None:
    connection = await asyncio.open_connection("127.0.0.1", port)
    connection[1].write(sent)

    waited = await seconds_until_closed(connection)

    assert HEADER_TIMEOUT * 0.9 <= waited < HEADER_TIMEOUT + 2


async def test_a_head_sent_in_parts_within_the_timeout_is_answered_and_the_connection_kept(
    port: int,
) -> None:
    connection = await asyncio.open_connection("127.0.0.1", port)
    for part in (b"GET /heal", b"thz HTTP/1.1\r\nHost: t\r\n", b"\r\n"):
        connection[1].write(part)
        await asyncio.sleep(HEADER_TIMEOUT / 4)
    first = await answer(connection)
    # Idle longer than the header timeout between requests: keep-alive's business, not its.
    await asyncio.sleep(HEADER_TIMEOUT * 1.5)
    connection[1].write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    second = await answer(connection)
    connection[1].close()

    assert first.startswith(b"HTTP/1.1 200 ")
    assert second.startswith(b"HTTP/1.1 200 ")


async def test_a_later_request_whose_head_stalls_is_closed_after_the_timeout(port: int) -> None:
    connection = await asyncio.open_connection("127.0.0.1", port)
    connection[1].write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await answer(connection)).startswith(b"HTTP/1.1 200 ")
    connection[1].write(b"GET /healthz HTTP/1.1\r\n")

    waited = await seconds_until_closed(connection)

    assert HEADER_TIMEOUT * 0.9 <= waited < HEADER_TIMEOUT + 2
