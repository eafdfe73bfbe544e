"""The request guard of every service: the key is checked before a path is validated or a body
read, a key below the route's role is refused before its body is read, and a body is bounded in
size (declared or streamed, never buffered past the limit) and in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message

from marketsense.common.auth import Role
from tests.behaviour.common.guard_support import (
    BIG_LIMIT,
    DEFAULT_LIMIT,
    STREAM_LIMIT,
    Guarded,
    guarded_app,
)

FIFTY_MB = 50 << 20


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Guarded]:
    async with guarded_app(tmp_path / "home", http_body_timeout_seconds=0.3) as app:
        yield app


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("POST", "/items", b"{not json", id="unreadable-body"),
        pytest.param("POST", "/items", b'{"name": 1}', id="invalid-body"),
        pytest.param("PUT", "/items/seven", b"{}", id="bad-path-and-body"),
        pytest.param("GET", "/items/seven", b"", id="bad-path"),
        pytest.param("GET", "/items/1000", b"", id="path-out-of-range"),
        pytest.param("POST", "/big", b"x" * (BIG_LIMIT + 1), id="body-over-limit"),
        pytest.param("OPTIONS", "/items", b"", id="method-not-allowed"),
        pytest.param("GET", "/no/such/path", b"", id="unknown-path"),
    ],
)
@pytest.mark.parametrize("key", [None, "msk_" + "x" * 43], ids=["no-key", "unknown-key"])
async def test_a_request_without_a_valid_key_is_401_whatever_else_is_wrong_with_it(
    guarded: Guarded, method: str, path: str, body: bytes, key: str | None
) -> None:
    headers = {"Content-Type": "application/json"} | ({"X-API-Key": key} if key else {})

    response = await guarded.api.request(method, path, content=body, headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "X-API-Key"


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"name": 1}', b"x" * (DEFAULT_LIMIT + 1)],
    ids=["unreadable", "invalid", "over-limit"],
)
async def test_a_key_below_the_routes_role_is_403_before_its_body_counts(
    guarded: Guarded, body: bytes
) -> None:
    response = await guarded.api.put(
        "/items/seven",
        content=body,
        headers=guarded.key(Role.READER) | {"Content-Type": "application/json"},
    )

    assert response.status_code == 403
    assert response.json() == {"detail": "this needs the publisher role; key 'reader' is reader"}


async def test_operations_and_api_documents_need_no_key(guarded: Guarded) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert (await guarded.api.get(path)).status_code == 200, path


async def test_a_valid_key_reaches_the_route_and_an_unknown_path_is_404(guarded: Guarded) -> None:
    item = {"name": "widget", "count": 2}
    reader, publisher = guarded.key(Role.READER), guarded.key(Role.PUBLISHER)

    assert (await guarded.api.post("/items", json=item, headers=reader)).json() == item
    assert (await guarded.api.put("/items/3", json=item, headers=publisher)).json() == 5
    assert (await guarded.api.get("/no/such/path", headers=reader)).status_code == 404


class Body:
    """A request body fed to the app in chunks, counting what the app took of it."""

    def __init__(self, chunk: bytes, total: int, *, pause: float = 0.0, stall_after: int = -1):
        self.chunk = chunk
        self.left = total
        self.pause = pause
        self.stall_after = stall_after
        self.reads = 0

    async def receive(self) -> Message:
        """The next chunk; after the last, wait for ever (a client that stays connected)."""
        if self.left <= 0 or self.reads == self.stall_after:
            await asyncio.Event().wait()
        self.reads += 1
        await asyncio.sleep(self.pause)
        data = self.chunk[: self.left]
        self.left -= len(data)
        return {"type": "http.request", "body": data, "more_body": self.left > 0}


async def call(
    guarded: Guarded, path: str, body: Body, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """Call the app as a server would; the status, headers and body of its answer."""
    answer: dict[str, Any] = {"body": b""}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    await asyncio.wait_for(guarded.app(scope, body.receive, send), 10)
    return answer["status"], answer["headers"], answer["body"]


def json_headers(guarded: Guarded, role: Role, **more: str) -> dict[str, str]:
    """The key of a role and a JSON content type, and any other headers."""
    return guarded.key(role) | {"Content-Type": "application/json"} | more


async def test_a_body_declared_over_the_limit_is_413_naming_it_before_a_byte_is_read(
    guarded: Guarded,
) -> None:
    body = Body(b"x" * 65536, FIFTY_MB)
    headers = json_headers(guarded, Role.READER, **{"Content-Length": str(FIFTY_MB)})

    status, answer_headers, answer = await call(guarded, "/items", body, headers)

    assert status == 413
    assert answer == (
        b'{"detail":"the request body is over this route\'s limit of 4,096 bytes '
        b'(MARKETSENSE_HTTP_MAX_BODY_KIB)"}'
    )
    assert answer_headers["connection"] == "close"
    assert body.reads == 0


async def test_a_streamed_body_without_a_length_is_refused_once_past_the_limit(
    guarded: Guarded,
) -> None:
    body = Body(b"x" * 1024, FIFTY_MB)

    status, _, answer = await call(guarded, "/items", body, json_headers(guarded, Role.READER))

    assert status == 413
    assert b"4,096 bytes" in answer
    # Four 1 KiB chunks fit; the fifth passes the limit, and nothing after it is read.
    assert body.reads == DEFAULT_LIMIT // 1024 + 1


async def test_a_route_stating_its_own_limit_takes_bodies_up_to_it_and_names_its_setting(
    guarded: Guarded,
) -> None:
    headers = guarded.key(Role.READER)
    fits = {"name": "x" * (BIG_LIMIT - 100), "count": 1}
    over = {"name": "x" * BIG_LIMIT, "count": 1}

    taken = await guarded.api.post("/big", json=fits, headers=headers)
    refused = await guarded.api.post("/big", json=over, headers=headers)

    assert taken.json() == {"length": BIG_LIMIT - 100}
    assert refused.status_code == 413
    assert refused.json() == {
        "detail": "the request body is over this route's limit of 65,536 bytes "
        "(MARKETSENSE_BIG_ROWS)"
    }


async def test_a_streamed_route_reads_past_the_default_up_to_its_own_limit(
    guarded: Guarded,
) -> None:
    headers = guarded.key(Role.PUBLISHER)

    taken = await guarded.api.post("/stream", content=b"x" * (STREAM_LIMIT - 1), headers=headers)
    refused = await guarded.api.post("/stream", content=b"x" * (STREAM_LIMIT + 1), headers=headers)

    assert taken.json() == {"size": STREAM_LIMIT - 1}
    assert refused.status_code == 413
    assert "MARKETSENSE_STREAM_MB" in refused.json()["detail"]


async def test_a_body_that_stops_arriving_is_408_once_the_body_timeout_passes(
    guarded: Guarded,
) -> None:
    body = Body(b"{", 10, stall_after=1)
    started = time.monotonic()

    status, headers, answer = await call(
        guarded, "/items", body, json_headers(guarded, Role.READER)
    )

    assert status == 408
    assert 0.3 <= time.monotonic() - started < 2
    assert answer == (
        b'{"detail":"the request body did not arrive within 0.3 s '
        b'(MARKETSENSE_HTTP_BODY_TIMEOUT_SECONDS)"}'
    )
    assert headers["connection"] == "close"


async def test_a_body_trickling_in_past_the_timeout_is_408_however_often_bytes_come(
    guarded: Guarded,
) -> None:
    body = Body(b"x", DEFAULT_LIMIT, pause=0.05)

    status, _, _ = await call(guarded, "/items", body, json_headers(guarded, Role.READER))

    assert status == 408
    assert body.reads < 10


async def test_a_streamed_upload_may_take_longer_while_each_part_comes_in_time(
    guarded: Guarded,
) -> None:
    body = Body(b"x" * 1000, 10_000, pause=0.1)  # 1 s in all, a part every 0.1 s

    status, _, answer = await call(guarded, "/stream", body, guarded.key(Role.PUBLISHER))

    assert (status, answer) == (200, b'{"size":10000}')


async def test_the_openapi_document_states_the_guards_answers_to_routes_with_a_body(
    guarded: Guarded,
) -> None:
    paths = (await guarded.api.get("/openapi.json")).json()["paths"]

    assert {"408", "413"} <= set(paths["/items"]["post"]["responses"])
    assert {"408", "413"} <= set(paths["/items/{n}"]["put"]["responses"])
    assert not {"408", "413"} & set(paths["/items/{n}"]["get"]["responses"])
