"""The registry client against a served registry: progress to the last byte, damage in transit
caught before anything is written, errors carrying the status and the server's detail."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketsense.common.api_client import ApiError
from marketsense.models.bundles import pack_bundle
from marketsense.registry.client import ChecksumMismatchError, RegistryClient
from tests.served_registry_support import (
    BACKENDS,
    Keys,
    MakePredictor,
    ServedRegistry,
    made_keys,
    model_name,
    predictor_maker,
    push,
    served_registry,
)


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServedRegistry]:
    """The real registry app under uvicorn in a thread, on a free loopback port."""
    with served_registry(request, tmp_path) as served:
        yield served


@pytest.fixture
def keys(registry: ServedRegistry) -> Keys:
    """A key of each role, under names no other test uses."""
    return made_keys(registry)


@pytest.fixture
def make_predictor(tmp_path: Path) -> MakePredictor:
    """Write predictor artifact folders whose manifests claim the given holdout AUC."""
    return predictor_maker(tmp_path)


def test_client_reports_upload_and_download_progress_to_the_last_byte(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    folder = make_predictor(0.6)
    uploads: list[tuple[int, int]] = []
    downloads: list[tuple[int, int]] = []
    with RegistryClient(registry.url, keys.publisher) as client:
        client.create_model(name, "predictor")
        version = client.push(name, folder, on_progress=lambda *p: uploads.append(p))
        got = client.download(
            name, version.version, tmp_path / "out", on_progress=lambda *p: downloads.append(p)
        )

    bundle_size = len(pack_bundle(folder))
    assert uploads[-1] == (bundle_size, bundle_size)
    assert [done for done, _ in uploads] == sorted(done for done, _ in uploads)
    total = sum(f.size for f in got.files)
    assert downloads[-1] == (total, total)
    assert [done for done, _ in downloads] == sorted(done for done, _ in downloads)


def test_client_detects_bytes_changed_in_transit(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor, tmp_path: Path
) -> None:
    name = model_name()
    version = push(registry, keys, name, make_predictor(0.6))

    class FlipOneByte(httpx.HTTPTransport):
        """Damages the body of every file download, as a faulty network path would."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            if "/files/" not in request.url.path:
                return response
            body = bytearray(response.read())
            body[len(body) // 2] ^= 0xFF
            return httpx.Response(
                response.status_code, headers=response.headers, content=bytes(body)
            )

    with (
        RegistryClient(registry.url, keys.reader, transport=FlipOneByte()) as client,
        pytest.raises(ChecksumMismatchError) as raised,
    ):
        client.download(name, version, tmp_path / "out")
    assert "nothing was written" in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_client_errors_carry_the_status_and_the_servers_detail(
    registry: ServedRegistry, keys: Keys
) -> None:
    name = model_name()
    with RegistryClient(registry.url, keys.publisher) as client:
        client.create_model(name, "predictor")
        with pytest.raises(ApiError) as exists:
            client.create_model(name, "predictor")
        with pytest.raises(ApiError) as unknown:
            client.get_version(name, 7)
        with pytest.raises(ApiError) as forbidden:
            client.rollback(name, "no approver")
        with pytest.raises(ValueError, match="no timezone"):
            client.alias_at(name, "production", dt.datetime(2026, 11, 20, 12))
        page = client.audit(model=name, limit=5)
    assert exists.value.status == 409
    assert name in exists.value.detail
    assert unknown.value.status == 404
    assert "7" in unknown.value.detail
    assert forbidden.value.status == 403
    assert "approver" in forbidden.value.detail
    assert page.items == []
    assert page.next_cursor is None


class _RewritePushAnswer(httpx.HTTPTransport):
    """Hands the client a push answer changed by `rewrite`, as a faulty registry or path would."""

    def __init__(self, rewrite: Callable[[dict[str, Any]], int]) -> None:
        super().__init__()
        self.rewrite = rewrite

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method != "POST" or not request.url.path.endswith("/versions"):
            return response
        body = json.loads(response.read())
        status = self.rewrite(body)
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(status, headers=headers, content=json.dumps(body).encode())


def _flip_model_sha(body: dict[str, Any]) -> int:
    (graph,) = [f for f in body["files"] if f["name"] == "model.onnx"]
    graph["sha256"] = "0" * 64
    return 201


def _drop_model(body: dict[str, Any]) -> int:
    body["files"] = [f for f in body["files"] if f["name"] != "model.onnx"]
    return 201


def _add_file(body: dict[str, Any]) -> int:
    body["files"].append({"name": "extra.bin", "sha256": "1" * 64, "size": 3})
    return 201


@pytest.mark.parametrize(
    ("rewrite", "says"),
    [
        (_flip_model_sha, r"model\.onnx of .* has sha256 .* but the registry recorded sha256 000"),
        (_drop_model, r"model\.onnx of .* but the registry did not store it"),
        (_add_file, r"the registry recorded \['extra\.bin'\] .* which .* does not hold"),
    ],
)
def test_push_compares_what_the_registry_stored_with_the_local_files(
    registry: ServedRegistry,
    keys: Keys,
    make_predictor: MakePredictor,
    rewrite: Callable[[dict[str, Any]], int],
    says: str,
) -> None:
    name = model_name()
    with RegistryClient(registry.url, keys.publisher) as plain:
        plain.create_model(name, "predictor")
    with (
        RegistryClient(
            registry.url, keys.publisher, transport=_RewritePushAnswer(rewrite)
        ) as client,
        pytest.raises(ChecksumMismatchError, match=says),
    ):
        client.push(name, make_predictor(0.6))


def test_push_says_whether_it_created_the_version(
    registry: ServedRegistry, keys: Keys, make_predictor: MakePredictor
) -> None:
    name = model_name()
    folder = make_predictor(0.6)
    with RegistryClient(registry.url, keys.publisher) as client:
        client.create_model(name, "predictor")
        first = client.push_folder(name, folder)
    # An identical push is answered 200 with the version that already holds the content.
    with RegistryClient(
        registry.url, keys.publisher, transport=_RewritePushAnswer(lambda body: 200)
    ) as client:
        again = client.push_folder(name, folder)

    assert first.created
    assert not again.created
