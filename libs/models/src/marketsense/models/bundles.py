"""Version bundles on the wire: a gzip tar of an artifact's files, all at the top level.

The manifest travels as its own form part; a copy inside the bundle must be the same manifest
(the registry extracts it to compare, then stores its own).
"""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
import zlib
from collections.abc import Collection
from pathlib import Path
from typing import IO

from marketsense.models.files import MANIFEST_FILE

_COPY_CHUNK = 1 << 20


class BundleError(ValueError):
    """A bundle that is not a gzip tar of plain top-level files, or breaks a size limit."""


def pack_bundle(folder: Path) -> bytes:
    """A gzip tar of every regular file at the top level of `folder` except manifest.json.

    Names are sorted and times, owners and modes fixed, so the same files give the same bytes.
    """
    buffer = io.BytesIO()
    # mtime=0 keeps the gzip header free of the packing time. ONNX weights barely compress: level 1
    # packs a 90 MB graph twice as fast as level 9 and only 0.4% larger.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(folder.iterdir(), key=lambda p: p.name):
            if path.name == MANIFEST_FILE or path.is_symlink() or not path.is_file():
                continue
            info = tarfile.TarInfo(path.name)
            info.size = path.stat().st_size
            info.mode = 0o644
            with path.open("rb") as source:
                tar.addfile(info, source)
    return buffer.getvalue()


def unpack_bundle(
    source: IO[bytes],
    directory: Path,
    *,
    allowed: Collection[str],
    max_bytes: int,
) -> list[str]:
    """Extract a bundle's files into `directory`; return their names, sorted.

    Only regular files named in `allowed` may appear, each once, at the top level (a leading
    `./` is accepted); a `manifest.json` member is extracted when `allowed` names it (and then
    returned among the names), skipped otherwise. Links, directories, absolute or `..`
    paths and more than `max_bytes` of unpacked data raise BundleError before anything of the
    offending member is written.
    """
    names: list[str] = []
    total = 0
    try:
        with tarfile.open(fileobj=source, mode="r:gz") as tar:
            for member in tar:
                name = _member_name(member)
                if name is None:
                    continue
                if name == MANIFEST_FILE and name not in allowed:
                    continue
                if name not in allowed:
                    raise BundleError(
                        f"unexpected file {name!r} in the bundle "
                        f"(allowed: {sorted(set(allowed) - {MANIFEST_FILE})})"
                    )
                if name in names:
                    raise BundleError(f"the bundle holds {name!r} twice")
                total += member.size
                if total > max_bytes:
                    raise BundleError(
                        f"the bundle unpacks to more than {max_bytes} bytes (at {name!r})"
                    )
                _extract(tar, member, directory / name)
                names.append(name)
    except (tarfile.ReadError, gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise BundleError(f"the bundle is not a gzip tar: {error}") from error
    return sorted(names)


def _member_name(member: tarfile.TarInfo) -> str | None:
    """The plain file name a member may be extracted as, None to skip it, or BundleError."""
    raw = member.name
    name = raw[2:] if raw.startswith("./") else raw
    if member.isdir() and name.rstrip("/") in ("", "."):
        return None  # the `.` entry `tar -C folder .` writes first
    if raw.startswith("/"):
        raise BundleError(f"bundle member {raw!r} has an absolute path")
    if "\\" in raw:
        raise BundleError(f"bundle member {raw!r} has a backslash in its name")
    if ".." in raw.split("/"):
        raise BundleError(f"bundle member {raw!r} points outside the bundle (..)")
    if member.issym() or member.islnk():
        raise BundleError(f"bundle member {raw!r} is a link; send the file itself")
    if member.isdir() or "/" in name:
        raise BundleError(f"bundle member {raw!r} is nested; put every file at the top level")
    if not member.isfile():
        raise BundleError(f"bundle member {raw!r} is not a regular file")
    if not name or name == ".":
        raise BundleError(f"bundle member {raw!r} has no file name")
    return name


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    """Copy one member's bytes to `target`, reading no more than its declared size."""
    reader = tar.extractfile(member)
    if reader is None:  # pragma: no cover - only regular files reach here
        raise BundleError(f"bundle member {member.name!r} has no data")
    with reader, target.open("wb") as out:
        shutil.copyfileobj(reader, out, _COPY_CHUNK)
