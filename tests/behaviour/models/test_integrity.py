"""A manifest's file list, checked against the files a bundle holds, and the identity of a push."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from marketsense.models.bundles import pack_bundle
from marketsense.models.checks import CheckedBundle, check_upload
from marketsense.models.integrity import (
    FileMismatch,
    ManifestFile,
    content_sha256,
    file_sha256,
    list_files,
    verify_files,
)
from tests.artifacts import small_predictor
from tests.behaviour.models.pushes import SENTIMENT
from tests.conftest import INTEGRATION
from tests.registry_support import Registry, sha256_of


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A bundle folder of two files and a manifest."""
    (tmp_path / "model.onnx").write_bytes(b"graph" * 1000)
    (tmp_path / "tokenizer.json").write_bytes(b'{"vocab": {}}')
    (tmp_path / "manifest.json").write_text("{}")
    return tmp_path


def test_the_listing_names_every_file_but_the_manifest_with_its_hash_and_size(
    folder: Path,
) -> None:
    listed = list_files(folder)

    assert [(f.name, f.size) for f in listed] == [("model.onnx", 5000), ("tokenizer.json", 13)]
    assert listed[0].sha256 == hashlib.sha256(b"graph" * 1000).hexdigest()
    assert file_sha256(folder / "tokenizer.json") == hashlib.sha256(b'{"vocab": {}}').hexdigest()


def test_files_matching_their_listing_pass(folder: Path) -> None:
    verify_files(folder, ["model.onnx", "tokenizer.json"], list_files(folder))


def test_an_empty_listing_is_refused_naming_the_field(folder: Path) -> None:
    with pytest.raises(FileMismatch, match=r"manifest field `files` is empty"):
        verify_files(folder, ["model.onnx"], [])


def test_a_file_changed_after_listing_is_refused_with_both_hashes(folder: Path) -> None:
    listed = list_files(folder)
    (folder / "model.onnx").write_bytes(b"GRAPH" * 1000)  # same size, other bytes

    with pytest.raises(FileMismatch) as raised:
        verify_files(folder, ["model.onnx", "tokenizer.json"], listed)

    now = hashlib.sha256(b"GRAPH" * 1000).hexdigest()
    assert str(raised.value) == (
        f"bundle file 'model.onnx' has sha256 {now}; manifest field `files` says "
        f"{listed[0].sha256}: the file changed after the manifest was written"
    )


def test_a_file_of_another_size_is_refused(folder: Path) -> None:
    listed = list_files(folder)
    (folder / "tokenizer.json").write_bytes(b"{}")

    with pytest.raises(FileMismatch, match=r"'tokenizer.json' has 2 bytes; .* says 13"):
        verify_files(folder, ["model.onnx", "tokenizer.json"], listed)


def test_an_unlisted_file_is_refused(folder: Path) -> None:
    listed = [f for f in list_files(folder) if f.name != "tokenizer.json"]

    with pytest.raises(FileMismatch, match=r"'tokenizer.json' is not listed in .* `files`"):
        verify_files(folder, ["model.onnx", "tokenizer.json"], listed)


def test_a_listed_file_the_bundle_lacks_is_refused(folder: Path) -> None:
    listed = [*list_files(folder), ManifestFile(name="model.int8.onnx", sha256="0" * 64, size=1)]

    with pytest.raises(FileMismatch, match=r"lists \['model.int8.onnx'\], which the bundle lacks"):
        verify_files(folder, ["model.onnx", "tokenizer.json"], listed)


def test_a_file_listed_twice_is_refused(folder: Path) -> None:
    listed = list_files(folder)

    with pytest.raises(FileMismatch, match=r"lists 'model.onnx' twice"):
        verify_files(folder, ["model.onnx", "tokenizer.json"], [*listed, listed[0]])


def test_a_push_is_identified_by_content_whatever_its_name_and_number(folder: Path) -> None:
    files = list_files(folder)
    manifest = {"name": "mine", "version": "7", "labels": ["negative", "positive"]}

    same = content_sha256(manifest | {"name": "theirs", "version": "1"}, reversed(files))
    other_manifest = content_sha256(manifest | {"labels": ["positive", "negative"]}, files)
    (folder / "tokenizer.json").write_bytes(b'{"vocab": {"a": 1}}')
    other_files = content_sha256(manifest, list_files(folder))

    assert content_sha256(manifest, files) == same
    assert len({same, other_manifest, other_files}) == 3


def test_a_checked_push_carries_its_content_hash_whatever_name_it_was_pushed_under(
    tmp_path: Path,
) -> None:
    folder = small_predictor(tmp_path / "predictor", name="pushed-as", version="9")
    manifest = json.loads((folder / "manifest.json").read_text())

    def check(model_name: str, target: str) -> CheckedBundle:
        (tmp_path / target).mkdir()
        return check_upload(
            kind="predictor",
            model_name=model_name,
            manifest_bytes=(folder / "manifest.json").read_bytes(),
            bundle=io.BytesIO(pack_bundle(folder)),
            directory=tmp_path / target,
            max_unpacked_bytes=1 << 20,
        )

    first, second = check("one", "a"), check("two", "b")

    files = [ManifestFile.model_validate(f) for f in manifest["files"]]
    assert first.content_sha256 == second.content_sha256 == content_sha256(manifest, files)
    assert first.checks == {"files": 1}


# The real model's 150 MB push takes seconds of CPU on any backend: it runs embedded and on the
# real servers (PostgreSQL and S3 hold what it stores), not on the two mixed pairs besides.
@pytest.mark.parametrize(
    ("database_url", "store"),
    [("sqlite", "file"), pytest.param("postgres", "s3", marks=INTEGRATION)],
    indirect=True,
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
    expected = {
        "manifest.json",
        "model.onnx",
        "model.int8.onnx",
        "tokenizer.json",
        "reference.json",
    }
    assert {p.name for p in sentiment_model_dir.iterdir()} == expected  # noqa: ASYNC240
    assert set(files) == expected
    for name in expected - {"manifest.json"}:
        assert files[name] == sha256_of(sentiment_model_dir / name), name
    assert version["metrics"]["heldout_macro_f1"] > 0
