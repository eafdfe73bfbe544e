"""The object store interface: atomic writes, checksummed reads."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence

from marketsense.common.errors import BadObjectKey, NonRetryableError, ObjectIntegrityError
from marketsense.common.events import ObjectRef


class ObjectStore(abc.ABC):
    """Stores bytes under keys such as `raw/2026-11-20/<run>/AAPL/bars.parquet`."""

    base_uri: str

    async def put(self, key: str, data: bytes) -> ObjectRef:
        """Write an object atomically and return its reference."""
        _check_key(key)
        await self._write(key, data)
        return ObjectRef(uri=self.uri_for(key), sha256=sha256_hex(data), size=len(data))

    async def get(self, ref: ObjectRef) -> bytes:
        """Read the object a reference names; raise if its bytes do not match the checksum."""
        data = await self.read_key(self.key_for(ref.uri))
        actual = sha256_hex(data)
        if actual != ref.sha256 or len(data) != ref.size:
            raise ObjectIntegrityError(
                f"checksum mismatch for {ref.uri}: expected sha256 {ref.sha256} "
                f"({ref.size} bytes), got {actual} ({len(data)} bytes)"
            )
        return data

    def uri_for(self, key: str) -> str:
        """The URI of a key in this store."""
        return f"{self.base_uri.rstrip('/')}/{key}"

    def key_for(self, uri: str) -> str:
        """The key of a URI in this store; refuse URIs of other stores."""
        base = self.base_uri.rstrip("/") + "/"
        if not uri.startswith(base):
            raise NonRetryableError(f"{uri} is not in this object store ({self.base_uri})")
        key = uri[len(base) :]
        _check_key(key)
        return key

    @abc.abstractmethod
    async def read_key(self, key: str) -> bytes:
        """Read an object's bytes by key, unverified; raise ObjectNotFound if absent."""

    @abc.abstractmethod
    async def _write(self, key: str, data: bytes) -> None:
        """Write bytes so that no reader ever sees a partial object."""

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether an object exists under the key."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove an object; absent objects are fine."""

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Remove objects, absent ones included; one call per key unless the store batches."""
        for key in keys:
            await self.delete(key)

    @abc.abstractmethod
    async def healthy(self) -> bool:
        """Whether the store answers right now."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Prepare the store (create the bucket or folder)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def _check_key(key: str) -> None:
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise BadObjectKey(f"bad object key {key!r}: use a relative path without '..'")
