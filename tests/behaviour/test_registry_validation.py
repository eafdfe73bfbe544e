"""Pushes the serving services could not load are refused with a 422 naming the file or field;
bundles over the size limit with a 413, before they are read whole."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from marketsense.common.db.engine import Database
from marketsense.common.features import FEATURE_COLUMNS
from marketsense.common.store import ObjectStore
from marketsense.models.bundles import pack_bundle
from marketsense.models.sentiment import SentimentManifest
from tests.artifacts import small_predictor
from tests.registry_support import (
    Registry,
    registry_settings,
    running_registry,
    sha256_of,
)

PREDICTOR = "checked-predictor"
SENTIMENT = "checked-sentiment"


@contextlib.asynccontextmanager
async def _registry(
    database: Database, database_url: str, store: ObjectStore, home: Path, max_bundle_mb: int
) -> AsyncIterator[Registry]:
    """A registry with the given bundle limit and one model of each kind registered."""
    settings = registry_settings(
        home=home,
        database_url=database_url,
        store_url=store.base_uri,
        registry_max_bundle_mb=max_bundle_mb,
    )
    async with running_registry(database=database, settings=settings) as running:
        assert (await running.create_model(PREDICTOR)).status_code == 201
        assert (await running.create_model(SENTIMENT, kind="sentiment")).status_code == 201
        yield running


@pytest.fixture
async def registry(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Registry]:
    """The registry app with a 1 MiB bundle limit, a predictor and a sentiment model registered."""
    async with _registry(database, database_url, store, tmp_path / "home", 1) as running:
        yield running


@pytest.fixture
async def roomy_registry(
    database: Database, database_url: str, store: ObjectStore, tmp_path: Path
) -> AsyncIterator[Registry]:
    """The same with the default limit, for the real sentiment model (about 150 MB)."""
    async with _registry(database, database_url, store, tmp_path / "home", 512) as running:
        yield running


def _tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    """A gzip tar holding exactly the members given (bytes for regular files)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    """A regular file member."""
    return tarfile.TarInfo(name), data


def _sentiment_manifest(**fields: Any) -> bytes:
    """A valid sentiment manifest's JSON, with `fields` laid over it."""
    manifest = SentimentManifest(
        name="minilm",
        version="1",
        labels=["negative", "neutral", "positive"],
        max_length=64,
        input_names=["input_ids", "attention_mask"],
        output_name="logits",
        metrics={"heldout_macro_f1": 0.8},
        evaluation_window="heldout set v1",
    )
    return json.dumps(manifest.model_dump(mode="json") | fields).encode()


def _predictor_manifest(folder: Path, **changes: Any) -> bytes:
    """A folder's manifest JSON with `changes` applied (None deletes a field)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del manifest[key]
    return json.dumps(manifest).encode()


async def _refused(response: httpx.Response, registry: Registry, model: str) -> str:
    """Assert a push was refused with 422 and left nothing behind; return its detail."""
    assert response.status_code == 422, response.text
    versions = await registry.api.get(
        f"/v1/models/{model}/versions", headers=registry.key("reader")
    )
    assert versions.json() == []
    assert not await registry.runtime.store.exists(f"models/{model}/1/manifest.json")
    detail: str = response.json()["detail"]
    return detail


@pytest.fixture
def predictor(tmp_path: Path) -> Path:
    """A valid predictor folder."""
    return small_predictor(tmp_path / "predictor")


async def test_a_corrupt_onnx_file_is_refused(registry: Registry, predictor: Path) -> None:
    (predictor / "model.onnx").write_bytes(b"this is not an ONNX graph" * 10)

    detail = await _refused(await registry.push(PREDICTOR, predictor), registry, PREDICTOR)

    assert detail.startswith("model.onnx does not load in onnxruntime: ")


async def test_an_input_name_the_graph_lacks_is_refused(
    registry: Registry, predictor: Path
) -> None:
    manifest = _predictor_manifest(predictor, input_name="x")
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await _refused(response, registry, PREDICTOR)

    assert detail == "manifest input 'x' is not a graph input (graph has ['X'])"


async def test_an_output_name_the_graph_lacks_is_refused(
    registry: Registry, predictor: Path
) -> None:
    manifest = _predictor_manifest(predictor, probability_output="probs")
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await _refused(response, registry, PREDICTOR)

    assert (
        detail
        == "manifest output 'probs' is not a graph output (graph has ['label', 'probabilities'])"
    )


async def test_an_output_that_is_not_two_class_probabilities_is_refused(
    registry: Registry, predictor: Path
) -> None:
    manifest = _predictor_manifest(predictor, probability_output="label")
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await _refused(response, registry, PREDICTOR)

    assert detail.startswith("output 'label' has shape [1] for one row; expected [1, 2]")


async def test_an_unknown_feature_schema_is_refused(registry: Registry, predictor: Path) -> None:
    manifest = _predictor_manifest(predictor, feature_schema="foo-v9")
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await _refused(response, registry, PREDICTOR)

    assert detail == (
        "feature schema 'foo-v9' is not one processing produces (known: technical-sentiment-v1)"
    )


async def test_a_feature_outside_the_schema_is_refused(registry: Registry, predictor: Path) -> None:
    features = [*FEATURE_COLUMNS[:-1], "moon_phase"]
    manifest = _predictor_manifest(predictor, features=features)
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await _refused(response, registry, PREDICTOR)

    assert detail == (
        "features ['moon_phase'] are not columns of feature schema 'technical-sentiment-v1'"
    )


async def test_a_feature_count_the_graph_does_not_take_is_refused(
    registry: Registry, predictor: Path
) -> None:
    manifest = _predictor_manifest(predictor, features=list(FEATURE_COLUMNS[:5]))
    response = await registry.push_parts(
        PREDICTOR, manifest=manifest, bundle=pack_bundle(predictor)
    )

    detail = await _refused(response, registry, PREDICTOR)

    assert detail == (
        f"graph input 'X' takes {len(FEATURE_COLUMNS)} features but the manifest lists 5"
    )


async def test_an_invalid_manifest_is_refused_naming_the_field(
    registry: Registry, predictor: Path
) -> None:
    without_features = _predictor_manifest(predictor, features=None)
    not_json = b"{'features': ["

    missing = await registry.push_parts(
        PREDICTOR, manifest=without_features, bundle=pack_bundle(predictor)
    )
    garbled = await registry.push_parts(PREDICTOR, manifest=not_json, bundle=pack_bundle(predictor))

    assert (await _refused(missing, registry, PREDICTOR)) == (
        "manifest is invalid: features: Field required"
    )
    assert (await _refused(garbled, registry, PREDICTOR)).startswith("manifest is not JSON")


async def test_a_manifest_of_another_kind_is_refused(registry: Registry, predictor: Path) -> None:
    response = await registry.push_parts(
        PREDICTOR, manifest=_sentiment_manifest(), bundle=pack_bundle(predictor)
    )

    detail = await _refused(response, registry, PREDICTOR)

    assert detail == (
        "manifest kind 'sentiment' does not match model 'checked-predictor', "
        "which is registered as 'predictor'"
    )


@pytest.mark.parametrize(
    "bundle",
    [
        pytest.param(b"plain bytes, not an archive", id="not-gzip"),
        pytest.param(gzip.compress(b"gzip, but not a tar " * 100), id="gzip-not-tar"),
        pytest.param(b"", id="empty"),
    ],
)
async def test_a_bundle_that_is_not_a_gzip_tar_is_refused(
    registry: Registry, predictor: Path, bundle: bytes
) -> None:
    response = await registry.push(PREDICTOR, predictor, bundle=bundle)

    detail = await _refused(response, registry, PREDICTOR)

    assert detail.startswith("the bundle is not a gzip tar")


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    """A symbolic or hard link member."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _directory(name: str) -> tuple[tarfile.TarInfo, None]:
    """A directory member."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, None


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        pytest.param(_file("../model.onnx", b"x"), "points outside the bundle", id="dot-dot"),
        pytest.param(
            _file("./sub/../../model.onnx", b"x"), "points outside the bundle", id="nested-dot-dot"
        ),
        pytest.param(_file("/etc/model.onnx", b"x"), "has an absolute path", id="absolute"),
        pytest.param(
            _link("model.onnx", "/etc/passwd", tarfile.SYMTYPE), "is a link", id="symlink"
        ),
        pytest.param(_link("model.onnx", "other", tarfile.LNKTYPE), "is a link", id="hardlink"),
        pytest.param(_file("sub/model.onnx", b"x"), "is nested", id="nested-file"),
        pytest.param(_directory("sub"), "is nested", id="directory"),
    ],
)
async def test_bundle_members_that_could_escape_or_nest_are_refused(
    registry: Registry,
    predictor: Path,
    member: tuple[tarfile.TarInfo, bytes | None],
    problem: str,
) -> None:
    bundle = _tar_gz(member, _file("model.onnx", (predictor / "model.onnx").read_bytes()))

    detail = await _refused(
        await registry.push(PREDICTOR, predictor, bundle=bundle), registry, PREDICTOR
    )

    assert problem in detail
    assert repr(member[0].name) in detail
    assert not (registry.runtime.settings.home / "model.onnx").exists()


async def test_an_unexpected_file_is_refused(registry: Registry, predictor: Path) -> None:
    (predictor / "notes.txt").write_text("trained on a Tuesday")

    detail = await _refused(await registry.push(PREDICTOR, predictor), registry, PREDICTOR)

    assert detail == "unexpected file 'notes.txt' in the bundle (allowed: ['model.onnx'])"


async def test_a_bundle_without_its_graph_is_refused_and_its_own_manifest_ignored(
    registry: Registry, predictor: Path
) -> None:
    bundle = _tar_gz(_file("manifest.json", (predictor / "manifest.json").read_bytes()))

    detail = await _refused(
        await registry.push(PREDICTOR, predictor, bundle=bundle), registry, PREDICTOR
    )

    assert detail == "predictor bundle has no model.onnx"


async def test_a_file_sent_twice_is_refused(registry: Registry, predictor: Path) -> None:
    graph = (predictor / "model.onnx").read_bytes()
    bundle = _tar_gz(_file("model.onnx", graph), _file("./model.onnx", graph))

    detail = await _refused(
        await registry.push(PREDICTOR, predictor, bundle=bundle), registry, PREDICTOR
    )

    assert detail == "the bundle holds 'model.onnx' twice"


async def test_a_sentiment_bundle_without_a_tokenizer_is_refused(registry: Registry) -> None:
    bundle = _tar_gz(_file("model.onnx", b"graph bytes"))

    response = await registry.push_parts(SENTIMENT, manifest=_sentiment_manifest(), bundle=bundle)

    assert await _refused(response, registry, SENTIMENT) == "sentiment bundle has no tokenizer.json"


async def test_a_sentiment_bundle_with_an_unloadable_tokenizer_is_refused(
    registry: Registry,
) -> None:
    bundle = _tar_gz(
        _file("model.onnx", b"graph bytes"), _file("tokenizer.json", b'{"model": "half a toke')
    )

    response = await registry.push_parts(SENTIMENT, manifest=_sentiment_manifest(), bundle=bundle)

    assert (await _refused(response, registry, SENTIMENT)).startswith(
        "tokenizer.json does not load: "
    )


async def test_the_real_sentiment_model_is_accepted_with_every_file(
    roomy_registry: Registry, sentiment_model_dir: Path
) -> None:
    registry = roomy_registry

    response = await registry.push(SENTIMENT, sentiment_model_dir)

    assert response.status_code == 201, response.text
    version = response.json()
    assert version["kind"] == "sentiment"
    assert version["manifest"]["name"] == SENTIMENT
    files = {f["name"]: f["sha256"] for f in version["files"]}
    expected = {"manifest.json", "model.onnx", "model.int8.onnx", "tokenizer.json"}
    assert {p.name for p in sentiment_model_dir.iterdir()} == expected  # noqa: ASYNC240
    assert set(files) == expected
    for name in expected - {"manifest.json"}:
        assert files[name] == sha256_of(sentiment_model_dir / name), name
    assert version["metrics"]["heldout_macro_f1"] > 0


async def test_a_bundle_over_the_limit_is_refused_from_its_declared_length(
    registry: Registry, predictor: Path
) -> None:
    oversized = _tar_gz(_file("model.onnx", _incompressible(3 << 20)))

    response = await registry.push(PREDICTOR, predictor, bundle=oversized)

    assert response.status_code == 413
    assert "MARKETSENSE_REGISTRY_MAX_BUNDLE_MB" in response.json()["detail"]
    assert "1 MiB" in response.json()["detail"]


async def test_a_streamed_bundle_over_the_limit_is_refused_before_it_is_read_whole(
    registry: Registry, predictor: Path
) -> None:
    boundary = "test-boundary-7f3a"
    manifest = (predictor / "manifest.json").read_bytes()
    chunk = _incompressible(64 << 10)
    chunks_in_body = 128  # 8 MiB, eight times the limit
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="manifest"; filename="manifest.json"\r\n'
                "Content-Type: application/json\r\n\r\n"
            ).encode()
            + manifest
            + (
                f"\r\n--{boundary}\r\n"
                'Content-Disposition: form-data; name="bundle"; filename="bundle.tar.gz"\r\n'
                "Content-Type: application/gzip\r\n\r\n"
            ).encode()
        )
        for _ in range(chunks_in_body):
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await registry.api.post(
        f"/v1/models/{PREDICTOR}/versions",
        content=body(),
        headers=registry.key("publisher")
        | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert response.status_code == 413
    assert "Content-Length" not in response.request.headers
    assert sent <= (1 << 20) + 2 * len(chunk)


async def test_a_push_that_is_not_the_two_part_form_is_refused(
    registry: Registry, predictor: Path
) -> None:
    only_manifest = await registry.api.post(
        f"/v1/models/{PREDICTOR}/versions",
        files={"manifest": ("manifest.json", (predictor / "manifest.json").read_bytes())},
        headers=registry.key("publisher"),
    )
    as_json = await registry.api.post(
        f"/v1/models/{PREDICTOR}/versions", json={"manifest": {}}, headers=registry.key("publisher")
    )
    extra_part = await registry.api.post(
        f"/v1/models/{PREDICTOR}/versions",
        files={
            "manifest": ("manifest.json", (predictor / "manifest.json").read_bytes()),
            "bundle": ("b.tgz", pack_bundle(predictor)),
            "readme": ("README", b"hello"),
        },
        headers=registry.key("publisher"),
    )
    unknown_model = await registry.push("no-such-model", predictor)

    assert (await _refused(only_manifest, registry, PREDICTOR)) == (
        "the push lacks the form part(s) ['bundle']"
    )
    assert "multipart/form-data" in await _refused(as_json, registry, PREDICTOR)
    assert "unexpected form part 'readme'" in await _refused(extra_part, registry, PREDICTOR)
    assert unknown_model.status_code == 404


def _incompressible(size: int) -> bytes:
    """Bytes gzip cannot shrink, so a bundle's size is what the test asks for."""
    return os.urandom(size)
