"""Object store on any S3-compatible server (`s3://bucket/prefix`)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
import obstore
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from obstore.auth.boto3 import Boto3CredentialProvider
from obstore.exceptions import BaseError
from obstore.store import S3Store as ObjectStoreS3

from marketsense.common.errors import ObjectNotFound, RetryableError
from marketsense.common.store.base import ObjectStore, _check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# What a failed object call can raise: obstore's own errors, or the OS's for a dead socket.
_CALL_ERRORS = (BaseError, OSError, TimeoutError)


class S3Store(ObjectStore):
    """Object calls go through obstore (Rust, async); bucket calls through boto3.

    obstore signs and sends a request in native code without a worker thread, which makes an
    object call an eighth of boto3's CPU (bench/s3_client.py). It has no bucket operations, so
    creating the bucket and the health check's HEAD use boto3, as does finding credentials when
    the settings give none. A PutObject is atomic by S3's own contract.
    """

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
        config: dict[str, Any] = {"region": region}
        provider = None
        if access_key_id is not None and secret_access_key is not None:
            config |= {"access_key_id": access_key_id, "secret_access_key": secret_access_key}
        else:
            # Unset keys mean boto3's credential chain, profiles and SSO included, which
            # object_store's own chain (environment, web identity, instance) lacks.
            session = boto3.Session(region_name=region)
            if session.get_credentials() is not None:
                provider = Boto3CredentialProvider(session)
        if endpoint_url is not None:
            config["endpoint"] = endpoint_url
        self._objects = ObjectStoreS3(
            self.bucket,
            credential_provider=provider,
            virtual_hosted_style_request=False,
            client_options={
                "allow_http": bool(endpoint_url and endpoint_url.startswith("http://")),
                "connect_timeout": dt.timedelta(seconds=5),
                # A stalled server is caught per read; the whole call may take longer, so that a
                # model bundle of hundreds of megabytes still downloads.
                "read_timeout": dt.timedelta(seconds=30),
                "timeout": dt.timedelta(minutes=10),
            },
            retry_config={"max_retries": 4, "retry_timeout": dt.timedelta(seconds=60)},
            **config,
        )
        self._buckets: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
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
            self._buckets.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._buckets.create_bucket(Bucket=self.bucket)

    async def read_key(self, key: str) -> bytes:
        """Read an object's bytes."""
        try:
            response = await obstore.get_async(self._objects, self._key(key))
            return bytes(await response.bytes_async())
        except FileNotFoundError as exc:  # obstore raises it for a 404
            raise ObjectNotFound(f"no object at {self.uri_for(key)}") from exc
        except _CALL_ERRORS as exc:
            raise RetryableError(f"S3 read of {self.uri_for(key)} failed: {exc}") from exc

    async def _write(self, key: str, data: bytes) -> None:
        try:
            await obstore.put_async(self._objects, self._key(key), data)
        except _CALL_ERRORS as exc:
            raise RetryableError(f"S3 write of {self.uri_for(key)} failed: {exc}") from exc

    async def exists(self, key: str) -> bool:
        """Whether an object exists under the key."""
        try:
            await obstore.head_async(self._objects, self._key(key))
        except FileNotFoundError:
            return False
        except _CALL_ERRORS as exc:
            # Only "not found" means absent; a 403 or 500 must not pass for a missing object.
            raise RetryableError(f"S3 HEAD of {self.uri_for(key)} failed: {exc}") from exc
        return True

    async def delete(self, key: str) -> None:
        """Remove an object."""
        try:
            await obstore.delete_async(self._objects, self._key(key))
        except _CALL_ERRORS as exc:
            raise RetryableError(f"S3 delete of {self.uri_for(key)} failed: {exc}") from exc

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Remove objects with DeleteObjects, up to 1000 keys a request; absent keys are fine."""
        paths = [self._key(key) for key in keys]
        if not paths:
            return
        try:
            await obstore.delete_async(self._objects, paths)
        except _CALL_ERRORS as exc:
            raise RetryableError(
                f"S3 delete of {len(paths)} objects under {self.base_uri} failed: {exc}"
            ) from exc

    async def healthy(self) -> bool:
        """Whether the bucket answers a HEAD request."""
        try:
            await asyncio.to_thread(self._buckets.head_bucket, Bucket=self.bucket)
        except (ClientError, BotoCoreError):
            return False
        return True

    async def close(self) -> None:
        """Close boto3's connection pool; obstore's closes with the store."""
        self._buckets.close()
