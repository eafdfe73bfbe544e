"""Object store on any S3-compatible server (`s3://bucket/prefix`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from marketsense.common.errors import ObjectNotFound, RetryableError
from marketsense.common.store.base import ObjectStore, _check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Store(ObjectStore):
    """boto3 calls run in worker threads; a PutObject is atomic by S3's own contract."""

    def __init__(
        self,
        base_uri: str,
        *,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
    ):
        parsed = urlparse(base_uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"S3Store needs s3://bucket[/prefix], got {base_uri!r}")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.base_uri = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                max_pool_connections=32,
                s3={"addressing_style": "path"},
            ),
        )

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def start(self) -> None:
        """Create the bucket if it does not exist."""
        await asyncio.to_thread(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._client.create_bucket(Bucket=self.bucket)

    async def read_key(self, key: str) -> bytes:
        """Read an object's bytes."""
        try:
            response = await asyncio.to_thread(
                self._client.get_object, Bucket=self.bucket, Key=self._key(key)
            )
            body: Any = response["Body"]
            data: bytes = await asyncio.to_thread(body.read)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise ObjectNotFound(f"no object at {self.uri_for(key)}") from exc
            raise RetryableError(f"S3 read of {self.uri_for(key)} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise RetryableError(f"S3 read of {self.uri_for(key)} failed: {exc}") from exc
        return data

    async def _write(self, key: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(
                self._client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data
            )
        except (ClientError, BotoCoreError) as exc:
            raise RetryableError(f"S3 write of {self.uri_for(key)} failed: {exc}") from exc

    async def exists(self, key: str) -> bool:
        """Whether an object exists under the key."""
        try:
            await asyncio.to_thread(
                self._client.head_object, Bucket=self.bucket, Key=self._key(key)
            )
        except ClientError as exc:
            # Only "not found" means absent; a 403 or 500 must not pass for a missing object.
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise RetryableError(f"S3 HEAD of {self.uri_for(key)} failed: {exc}") from exc
        return True

    async def delete(self, key: str) -> None:
        """Remove an object."""
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=self._key(key))

    async def healthy(self) -> bool:
        """Whether the bucket answers a HEAD request."""
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)
        except (ClientError, BotoCoreError):
            return False
        return True

    async def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
