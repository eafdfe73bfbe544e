"""Registered model versions as services read them: which version an alias names, and its files."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

from pydantic import BaseModel, TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketsense.common.db.models import ModelAlias, ModelVersion
from marketsense.common.events import ObjectRef
from marketsense.common.store.base import ObjectStore
from marketsense.models.files import MANIFEST_FILE

PRODUCTION = "production"
"""The alias services serve; exactly one version per model holds it, or none."""


class StoredFile(BaseModel):
    """One file of a version's bundle, as stored in the object store."""

    name: str
    """File name inside the bundle, such as `model.onnx`."""
    uri: str
    """Where it lives: `models/<name>/<version>/<file>` in the object store."""
    sha256: str
    """Hex SHA-256 of its bytes."""
    size: int
    """Size in bytes."""

    def ref(self) -> ObjectRef:
        """The object reference to read it with."""
        return ObjectRef(uri=self.uri, sha256=self.sha256, size=self.size)


_FILES = TypeAdapter(list[StoredFile])


def version_files(version: ModelVersion) -> list[StoredFile]:
    """The stored files of a version (its manifest included)."""
    return _FILES.validate_json(version.files)


def manifest_file(files: list[StoredFile]) -> StoredFile | None:
    """The stored manifest among a version's files, if it has one."""
    return next((f for f in files if f.name == MANIFEST_FILE), None)


def dump_files(files: list[StoredFile]) -> str:
    """The JSON form kept in `model_versions.files`."""
    return json.dumps([f.model_dump() for f in files])


async def alias_target(
    session: AsyncSession, model_name: str, alias: str = PRODUCTION
) -> ModelVersion | None:
    """The version an alias of a model points at, or None."""
    return await session.scalar(
        select(ModelVersion)
        .join(
            ModelAlias,
            (ModelAlias.model_name == ModelVersion.model_name)
            & (ModelAlias.version == ModelVersion.version),
        )
        .where(ModelAlias.model_name == model_name, ModelAlias.alias == alias)
    )


async def fetch_bundle(store: ObjectStore, files: list[StoredFile], directory: Path) -> Path:
    """Download and verify a bundle into `directory`, which appears whole or not at all.

    A folder already there is reused: it was only ever renamed into place complete and verified.
    """
    if await asyncio.to_thread(directory.is_dir):
        return directory
    # get() raises ObjectIntegrityError when the bytes do not match the registered sha256.
    contents = {stored.name: await store.get(stored.ref()) for stored in files}
    await asyncio.to_thread(_write_whole, directory, contents)
    return directory


def _write_whole(directory: Path, contents: dict[str, bytes]) -> None:
    staging = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    try:
        for name, data in contents.items():
            (staging / name).write_bytes(data)
        try:
            staging.rename(directory)
        except OSError:
            if not directory.is_dir():  # lost a race to another loader: theirs is as good
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
