"""Packing and unpacking version bundles: deterministic archives, bounded and flat extraction."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from marketsense.models.bundles import BundleError, pack_bundle, unpack_bundle

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
