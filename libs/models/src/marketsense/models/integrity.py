"""What a bundle's manifest promises about its files, and the hash that identifies a push."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from marketsense.models.files import MANIFEST_FILE

_CHUNK = 1 << 20
_RENAMED_BY_REGISTRY = ("name", "version")
"""Manifest fields the registry overwrites, so they do not make two pushes different."""


class ManifestFile(BaseModel):
    """One bundle file as the manifest lists it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    """File name at the top level of the bundle, such as `model.onnx`."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Hex SHA-256 of the file's bytes."""
    size: int = Field(ge=0)
    """Size in bytes."""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(directory: Path) -> list[ManifestFile]:
    """Every regular file at the top of `directory` but the manifest, by name, as listed."""
    return [
        ManifestFile(name=path.name, sha256=file_sha256(path), size=path.stat().st_size)
        for path in sorted(directory.iterdir(), key=lambda p: p.name)
        if path.name != MANIFEST_FILE and path.is_file() and not path.is_symlink()
    ]


def content_sha256(manifest: Mapping[str, Any], files: Iterable[ManifestFile]) -> str:
    """Identity of a push: its files' hashes and its manifest, whatever name and number it gets."""
    content = {k: v for k, v in manifest.items() if k not in _RENAMED_BY_REGISTRY}
    listing = sorted((f.name, f.sha256, f.size) for f in files)
    canonical = json.dumps(
        {"manifest": content, "files": listing}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class FileMismatch(ValueError):
    """Bundle files that differ from what the manifest lists."""


def verify_files(directory: Path, names: Iterable[str], listed: Iterable[ManifestFile]) -> None:
    """Check the files `names` in `directory` are exactly those listed, with their sha256 and size.

    Raises FileMismatch naming the first file that is unlisted, listed twice, absent, or of
    another size or hash.
    """
    listing = list(listed)
    if not listing:
        raise FileMismatch(
            "manifest field `files` is empty: list every bundle file with its sha256 and size "
            "(marketsense.models.integrity.list_files writes it; every exporter does)"
        )
    by_name: dict[str, ManifestFile] = {}
    for entry in listing:
        if entry.name in by_name:
            raise FileMismatch(f"manifest field `files` lists {entry.name!r} twice")
        by_name[entry.name] = entry
    present = set(names)
    absent = sorted(set(by_name) - present)
    if absent:
        raise FileMismatch(f"manifest field `files` lists {absent}, which the bundle lacks")
    for name in sorted(present):
        found = by_name.get(name)
        if found is None:
            raise FileMismatch(f"bundle file {name!r} is not listed in the manifest field `files`")
        entry = found
        size = (directory / name).stat().st_size
        if size != entry.size:
            raise FileMismatch(
                f"bundle file {name!r} has {size} bytes; manifest field `files` says {entry.size}"
            )
        digest = file_sha256(directory / name)
        if digest != entry.sha256:
            raise FileMismatch(
                f"bundle file {name!r} has sha256 {digest}; manifest field `files` says "
                f"{entry.sha256}: the file changed after the manifest was written"
            )
