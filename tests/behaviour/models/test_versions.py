"""Registered versions as services read them: their files, the version an alias names, and
bundles downloaded whole or not at all, on every database and object store."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from pathlib import Path

import pytest

from marketsense.common.db.engine import Database
from marketsense.common.db.models import ModelAlias, ModelVersion, RegisteredModel
from marketsense.common.errors import ObjectIntegrityError, ObjectNotFound
from marketsense.common.store import ObjectStore
from marketsense.models.files import MANIFEST_FILE, MODEL_FILE
from marketsense.models.versions import (
    PRODUCTION,
    StoredFile,
    alias_target,
    dump_files,
    fetch_bundle,
    manifest_file,
    version_files,
)

CONTENTS = {MANIFEST_FILE: b'{"name": "m"}', MODEL_FILE: b"graph bytes " * 1000}
"""A small bundle's files."""


async def stored(store: ObjectStore, contents: dict[str, bytes]) -> list[StoredFile]:
    """Put files in the store as the registry does; their stored descriptions."""
    prefix = f"models/m-{uuid.uuid4().hex[:8]}/1"
    files = []
    for name, data in contents.items():
        ref = await store.put(f"{prefix}/{name}", data)
        files.append(StoredFile(name=name, uri=ref.uri, sha256=ref.sha256, size=ref.size))
    return files


def leftovers(folder: Path) -> list[str]:
    """Staging folders a download left next to its target."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_versions_files_read_back_as_stored_and_its_manifest_is_found() -> None:
    files = [
        StoredFile(name=MODEL_FILE, uri="s3://b/models/m/1/model.onnx", sha256="a" * 64, size=9),
        StoredFile(
            name=MANIFEST_FILE, uri="s3://b/models/m/1/manifest.json", sha256="b" * 64, size=2
        ),
    ]
    version = ModelVersion(model_name="m", version=1, manifest="{}", files=dump_files(files))

    assert version_files(version) == files
    assert manifest_file(files) == files[1]
    assert manifest_file(files[:1]) is None
    assert manifest_file([]) is None
    ref = files[0].ref()
    assert (ref.uri, ref.sha256, ref.size) == (files[0].uri, "a" * 64, 9)


async def test_an_alias_names_the_version_it_points_at(database: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    async with database.session() as session:
        for name in ("m", "other"):
            session.add(RegisteredModel(name=name, kind="predictor", created_by="t"))
        await session.flush()
        for name, version in (("m", 1), ("m", 2), ("other", 1)):
            session.add(
                ModelVersion(
                    model_name=name, version=version, manifest="{}", files="[]", created_by="t"
                )
            )
        await session.flush()
        session.add(ModelAlias(model_name="m", alias=PRODUCTION, version=2, updated_at=now))
        session.add(ModelAlias(model_name="m", alias="staging", version=1, updated_at=now))
        await session.commit()

        production = await alias_target(session, "m")
        staging = await alias_target(session, "m", "staging")
        assert production is not None
        assert staging is not None
        assert (production.model_name, production.version) == ("m", 2)
        assert (staging.model_name, staging.version) == ("m", 1)
        assert await alias_target(session, "other") is None  # versions, but no alias
        assert await alias_target(session, "m", "canary") is None
        assert await alias_target(session, "no-such-model") is None


async def test_a_bundle_is_downloaded_whole_and_then_reused(
    store: ObjectStore, tmp_path: Path
) -> None:
    files = await stored(store, CONTENTS)
    target = tmp_path / "cache" / "m" / "1-abc"

    assert await fetch_bundle(store, files, target) == target
    assert {p.name: p.read_bytes() for p in target.iterdir()} == CONTENTS
    assert leftovers(target.parent) == []

    for stored_file in files:  # a folder already there is trusted: it was renamed in complete
        await store.delete(store.key_for(stored_file.uri))
    assert await fetch_bundle(store, files, target) == target
    assert (target / MODEL_FILE).read_bytes() == CONTENTS[MODEL_FILE]


async def test_a_file_whose_bytes_do_not_match_leaves_no_folder(
    store: ObjectStore, tmp_path: Path
) -> None:
    files = await stored(store, CONTENTS)
    wrong = hashlib.sha256(b"what the registry recorded").hexdigest()
    tampered = [
        f.model_copy(update={"sha256": wrong}) if f.name == MODEL_FILE else f for f in files
    ]
    target = tmp_path / "cache" / "1-abc"
    target.parent.mkdir()

    with pytest.raises(ObjectIntegrityError):
        await fetch_bundle(store, tampered, target)

    assert list(target.parent.iterdir()) == []


async def test_a_missing_file_leaves_no_folder(store: ObjectStore, tmp_path: Path) -> None:
    files = await stored(store, CONTENTS)
    await store.delete(store.key_for(files[0].uri))
    target = tmp_path / "cache" / "1-abc"
    target.parent.mkdir()

    with pytest.raises(ObjectNotFound):
        await fetch_bundle(store, files, target)

    assert list(target.parent.iterdir()) == []


async def test_loaders_racing_for_one_bundle_all_get_it_whole(
    store: ObjectStore, tmp_path: Path
) -> None:
    files = await stored(store, CONTENTS)
    target = tmp_path / "cache" / "1-abc"

    results = await asyncio.gather(*(fetch_bundle(store, files, target) for _ in range(5)))

    assert results == [target] * 5
    assert {p.name: p.read_bytes() for p in target.iterdir()} == CONTENTS
    assert leftovers(target.parent) == []
