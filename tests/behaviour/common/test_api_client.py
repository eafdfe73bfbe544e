"""The typed API client every CLI talks through, against a real local HTTP server: the key
header, typed answers, and errors that carry the server's own explanation."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from pydantic import BaseModel
from pytest_httpserver import HTTPServer

from marketsense.common.api_client import ApiClient, ApiError, error_detail
from marketsense.common.auth import KEY_HEADER
from tests.e2e.processes import free_port

KEY = "msk_" + "k" * 43


class RunRead(BaseModel):
    """What the test server answers for a run."""

    id: str
    state: str


class RunsClient(ApiClient):
    """A client as a service defines one: a name for errors and typed calls."""

    service = "the orchestrator"

    def run(self, run_id: str) -> RunRead:
        """One run."""
        return self._call(RunRead, "GET", f"/runs/{run_id}")

    def runs(self) -> list[RunRead]:
        """Every run."""
        return self._call_list(RunRead, "GET", "/runs")

    def cancel(self, run_id: str, reason: str) -> RunRead:
        """Cancel a run, saying why."""
        return self._call(RunRead, "POST", f"/runs/{run_id}/cancel", json={"reason": reason})

    def chunks(self, path: str) -> list[bytes]:
        """A streamed download, chunk by chunk."""
        with self._stream("GET", path) as response:
            return list(response.iter_bytes())


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_a_typed_call_sends_the_key_and_returns_the_model(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(
        "/runs/r1/cancel",
        method="POST",
        headers={KEY_HEADER: KEY},
        json={"reason": "bad data"},
    ).respond_with_json({"id": "r1", "state": "CANCELLED"})

    with RunsClient(httpserver.url_for("/") + "/", KEY) as client:
        run = client.cancel("r1", "bad data")

    httpserver.check_assertions()
    assert run == RunRead(id="r1", state="CANCELLED")
    assert client.base_url == httpserver.url_for("/").rstrip("/")


def test_a_list_call_returns_every_item_typed(httpserver: HTTPServer) -> None:
    items = [{"id": f"r{i}", "state": "SUCCESS"} for i in range(3)]
    httpserver.expect_oneshot_request("/runs").respond_with_json(items)

    with RunsClient(httpserver.url_for(""), KEY) as client:
        runs = client.runs()

    assert runs == [RunRead(id=f"r{i}", state="SUCCESS") for i in range(3)]


@pytest.mark.parametrize("key", [None, ""])
def test_without_a_key_no_key_header_is_sent(httpserver: HTTPServer, key: str | None) -> None:
    httpserver.expect_oneshot_request("/runs").respond_with_json([])

    with RunsClient(httpserver.url_for(""), key) as client:
        assert client.runs() == []

    [(request, _)] = httpserver.log
    assert KEY_HEADER not in request.headers


def test_an_error_answer_raises_with_the_status_and_the_servers_detail(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/runs/nope").respond_with_json({"detail": "no run nope"}, status=404)

    with RunsClient(httpserver.url_for(""), KEY) as client, pytest.raises(ApiError) as caught:
        client.run("nope")

    assert (caught.value.status, caught.value.detail) == (404, "no run nope")
    assert str(caught.value) == "404: no run nope"


def test_a_streamed_download_that_fails_raises_with_the_detail_of_its_body(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/files/ok").respond_with_data(b"x" * 100_000)
    httpserver.expect_request("/files/gone").respond_with_json(
        {"detail": "version 3 has no file model.onnx"}, status=410
    )

    with RunsClient(httpserver.url_for(""), KEY) as client:
        assert b"".join(client.chunks("/files/ok")) == b"x" * 100_000
        with pytest.raises(ApiError, match=r"^410: version 3 has no file model\.onnx$"):
            client.chunks("/files/gone")


def test_a_server_nobody_runs_is_named_in_the_error_without_a_status() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with RunsClient(url, KEY) as client, pytest.raises(ApiError) as caught:
        client.runs()

    assert caught.value.status is None
    assert caught.value.detail.startswith(f"cannot reach the orchestrator at {url}: ")


def test_a_server_that_never_answers_times_out_with_the_service_named(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"

    with RunsClient(url, KEY, timeout=0.3) as client, pytest.raises(ApiError) as caught:
        client.runs()

    assert caught.value.status is None
    assert caught.value.detail.startswith(f"the orchestrator at {url} did not answer in time")


def answer(status: int, body: bytes, content_type: str = "application/json") -> httpx.Response:
    """An HTTP answer as the client receives it."""
    return httpx.Response(status, content=body, headers={"content-type": content_type})


def validation_errors(*errors: object) -> bytes:
    """A 422 body as FastAPI writes it."""
    return json.dumps({"detail": list(errors)}).encode()


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        pytest.param(
            answer(409, b'{"detail": "run r1 is already RUNNING"}'),
            "run r1 is already RUNNING",
            id="sentence",
        ),
        pytest.param(
            answer(
                422,
                validation_errors(
                    {"loc": ["body", "as_of"], "msg": "Field required", "type": "missing"},
                    {"loc": ["query", "limit"], "msg": "should be <= 500", "type": "x"},
                    {"loc": ["body", "symbols", 3], "msg": "too long", "type": "x"},
                ),
            ),
            "as_of: Field required; query.limit: should be <= 500; symbols.3: too long",
            id="field-errors",
        ),
        pytest.param(
            answer(422, validation_errors({"loc": ["body"], "msg": "not a JSON object"})),
            "not a JSON object",
            id="error-on-the-whole-body",
        ),
        pytest.param(
            answer(422, validation_errors("a plain string", {"loc": [], "type": "x"})),
            "a plain string; {'loc': [], 'type': 'x'}",
            id="odd-items",
        ),
        pytest.param(
            answer(400, b'{"detail": {"code": 7, "why": "bad"}}'),
            '{"code": 7, "why": "bad"}',
            id="object-detail",
        ),
        pytest.param(
            answer(502, b"<html>Bad gateway</html>\n", "text/html"),
            "<html>Bad gateway</html>",
            id="html-from-a-proxy",
        ),
        pytest.param(answer(500, b'["not", "an", "object"]'), '["not", "an", "object"]', id="list"),
        pytest.param(answer(503, b""), "Service Unavailable", id="empty-body"),
        pytest.param(answer(500, b"  \n "), "Internal Server Error", id="blank-body"),
    ],
)
def test_error_detail_flattens_every_error_shape_to_one_line(
    response: httpx.Response, detail: str
) -> None:
    assert error_detail(response) == detail


def test_error_detail_of_a_huge_body_keeps_its_first_500_characters() -> None:
    response = answer(500, b"E" * 1_000_000, "text/plain")

    assert error_detail(response) == "E" * 500
