"""Packing and unpacking version bundles: deterministic archives, bounded and flat extraction;
and the registry refusing bundles that break those rules (422) or its size limit (413)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from marketsense.models.bundles import BundleError, pack_bundle, unpack_bundle
from tests.behaviour.models.pushes import PREDICTOR, refused, tar_file, tar_gz
from tests.registry_support import Registry

ALLOWED = {"model.onnx", "tokenizer.json"}


def _folder(path: Path) -> Path:
    """An artifact folder with a manifest, a sub-folder and a link the bundle must leave out."""
    path.mkdir()
    (path / "model.onnx").write_bytes(b"graph" * 100)
    (path / "tokenizer.json").write_text('{"model": {}}')
    (path / "manifest.json").write_text("{}")
    (path / "cache").mkdir()
    (path / "cache" / "x.bin").write_bytes(b"x")
    (path / "alias.onnx").symlink_to(path / "model.onnx")
    return path


def test_packing_the_same_files_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "a")
    first = pack_bundle(folder)
    os.utime(folder / "model.onnx", (0, 0))
    copy = _folder(tmp_path / "b")

    assert pack_bundle(folder) == first
    assert pack_bundle(copy) == first


def test_a_packed_bundle_holds_the_top_level_files_but_the_manifest(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "artifact")
    with tarfile.open(fileobj=io.BytesIO(pack_bundle(folder)), mode="r:gz") as tar:
        names = tar.getnames()
    out = tmp_path / "out"
    out.mkdir()

    unpacked = unpack_bundle(
        io.BytesIO(pack_bundle(folder)), out, allowed=ALLOWED, max_bytes=10_000
    )

    assert names == ["model.onnx", "tokenizer.json"]
    assert unpacked == ["model.onnx", "tokenizer.json"]
    assert (out / "model.onnx").read_bytes() == (folder / "model.onnx").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "tokenizer.json"]


def test_a_bundle_made_with_tar_from_inside_the_folder_is_accepted(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "artifact")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder / "model.onnx", arcname="./model.onnx")
        tar.add(folder / "manifest.json", arcname="./manifest.json")
    dot = tarfile.TarInfo(".")
    dot.type = tarfile.DIRTYPE
    with_dot = io.BytesIO()
    with tarfile.open(fileobj=with_dot, mode="w:gz") as tar:
        tar.addfile(dot)
        tar.add(folder / "model.onnx", arcname="./model.onnx")
    out = tmp_path / "out"
    out.mkdir()

    assert unpack_bundle(io.BytesIO(buffer.getvalue()), out, allowed=ALLOWED, max_bytes=10**6) == [
        "model.onnx"
    ]
    (out / "model.onnx").unlink()
    assert unpack_bundle(
        io.BytesIO(with_dot.getvalue()), out, allowed=ALLOWED, max_bytes=10**6
    ) == ["model.onnx"]
    assert not (out / "manifest.json").exists()


def test_a_bundle_unpacking_past_the_limit_is_refused_before_writing_the_member(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "artifact"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(bytes(5000))  # zeros: a few bytes once compressed
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(BundleError, match="unpacks to more than 4096 bytes"):
        unpack_bundle(io.BytesIO(pack_bundle(folder)), out, allowed=ALLOWED, max_bytes=4096)
    assert list(out.iterdir()) == []


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

    detail = await refused(response, registry, PREDICTOR)

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


def _fifo(name: str) -> tuple[tarfile.TarInfo, None]:
    """A named pipe member."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info, None


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        pytest.param(tar_file("../model.onnx", b"x"), "points outside the bundle", id="dot-dot"),
        pytest.param(
            tar_file("./sub/../../model.onnx", b"x"),
            "points outside the bundle",
            id="nested-dot-dot",
        ),
        pytest.param(tar_file("/etc/model.onnx", b"x"), "has an absolute path", id="absolute"),
        pytest.param(
            _link("model.onnx", "/etc/passwd", tarfile.SYMTYPE), "is a link", id="symlink"
        ),
        pytest.param(_link("model.onnx", "other", tarfile.LNKTYPE), "is a link", id="hardlink"),
        pytest.param(tar_file("sub/model.onnx", b"x"), "is nested", id="nested-file"),
        pytest.param(_directory("sub"), "is nested", id="directory"),
    ],
)
async def test_bundle_members_that_could_escape_or_nest_are_refused(
    registry: Registry,
    predictor: Path,
    member: tuple[tarfile.TarInfo, bytes | None],
    problem: str,
) -> None:
    bundle = tar_gz(member, tar_file("model.onnx", (predictor / "model.onnx").read_bytes()))

    detail = await refused(
        await registry.push(PREDICTOR, predictor, bundle=bundle), registry, PREDICTOR
    )

    assert problem in detail
    assert repr(member[0].name) in detail
    assert not (registry.runtime.settings.home / "model.onnx").exists()


async def test_an_unexpected_file_is_refused(registry: Registry, predictor: Path) -> None:
    (predictor / "notes.txt").write_text("trained on a Tuesday")

    detail = await refused(await registry.push(PREDICTOR, predictor), registry, PREDICTOR)

    assert detail == (
        "unexpected file 'notes.txt' in the bundle "
        "(allowed: ['feature_reference.parquet', 'model.onnx'])"
    )


async def test_a_file_sent_twice_is_refused(registry: Registry, predictor: Path) -> None:
    graph = (predictor / "model.onnx").read_bytes()
    bundle = tar_gz(tar_file("model.onnx", graph), tar_file("./model.onnx", graph))

    detail = await refused(
        await registry.push(PREDICTOR, predictor, bundle=bundle), registry, PREDICTOR
    )

    assert detail == "the bundle holds 'model.onnx' twice"


async def test_a_bundle_over_the_limit_is_refused_from_its_declared_length(
    registry: Registry, predictor: Path
) -> None:
    oversized = tar_gz(tar_file("model.onnx", _incompressible(3 << 20)))

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


def _incompressible(size: int) -> bytes:
    """Bytes gzip cannot shrink, so a bundle's size is what the test asks for."""
    return os.urandom(size)


def _unpack(bundle: bytes, out: Path) -> list[str]:
    """Unpack into `out` with the usual allowance and a roomy limit."""
    out.mkdir(exist_ok=True)
    return unpack_bundle(io.BytesIO(bundle), out, allowed=ALLOWED, max_bytes=10**6)


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        pytest.param(tar_file("model\\onnx", b"x"), "has a backslash", id="backslash"),
        pytest.param(_fifo("model.onnx"), "is not a regular file", id="fifo"),
        pytest.param(tar_file("tokenizer.json", b"{}"), "unexpected file", id="not-allowed-here"),
    ],
)
def test_members_that_are_not_plain_allowed_files_are_refused_by_name(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None], problem: str
) -> None:
    with pytest.raises(BundleError, match=problem):
        unpack_bundle(io.BytesIO(tar_gz(member)), tmp_path, allowed={"model.onnx"}, max_bytes=10**6)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_bundle_unpacks_to_no_files(tmp_path: Path) -> None:
    assert _unpack(tar_gz(), tmp_path / "out") == []


def test_a_bundle_cut_short_is_not_a_gzip_tar(tmp_path: Path) -> None:
    whole = tar_gz(tar_file("model.onnx", os.urandom(4096)))

    with pytest.raises(BundleError, match="the bundle is not a gzip tar"):
        _unpack(whole[: len(whole) // 2], tmp_path / "out")


def test_the_limit_counts_every_member_together(tmp_path: Path) -> None:
    bundle = tar_gz(tar_file("model.onnx", bytes(600)), tar_file("tokenizer.json", bytes(600)))
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(BundleError, match=r"more than 1000 bytes \(at 'tokenizer\.json'\)"):
        unpack_bundle(io.BytesIO(bundle), out, allowed=ALLOWED, max_bytes=1000)
    assert [p.name for p in out.iterdir()] == ["model.onnx"]
    assert _unpack(bundle, tmp_path / "roomy") == ["model.onnx", "tokenizer.json"]
