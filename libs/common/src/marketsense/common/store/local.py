"""Object store in a local folder (`file://`): the embedded default."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from marketsense.common.errors import ObjectNotFound
from marketsense.common.store.base import ObjectStore, _check_key


class FileStore(ObjectStore):
    """Objects are files under a root folder; writes go to a temporary file, then rename."""

    def __init__(self, base_uri: str):
        parsed = urlparse(base_uri)
        if parsed.scheme != "file":
            raise ValueError(f"FileStore needs a file:// URL, got {base_uri!r}")
        self.root = Path(unquote(parsed.path))
        self.base_uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        # Every entry point comes through here: no key may reach outside the root folder.
        _check_key(key)
        return self.root / key

    async def start(self) -> None:
        """Create the root folder."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def read_key(self, key: str) -> bytes:
        """Read a file's bytes."""
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object at {self.uri_for(key)}") from exc

    async def _write(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write_sync, self._path(key), data)

    @staticmethod
    def _write_sync(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            # rename is atomic on one file system: readers see the old or the new file.
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    async def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        """Remove the file if present."""
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Remove the files present, in one worker thread."""
        paths = [self._path(key) for key in keys]
        await asyncio.to_thread(_unlink_all, paths)

    async def healthy(self) -> bool:
        """Whether the root folder exists and is writable."""
        return self.root.is_dir() and os.access(self.root, os.W_OK)


def _unlink_all(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
