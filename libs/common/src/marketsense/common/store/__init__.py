"""Object store: one interface over `file://` and `s3://`."""

from pydantic import SecretStr

from marketsense.common.settings import CommonSettings
from marketsense.common.store.base import ObjectStore, sha256_hex
from marketsense.common.store.local import FileStore


def store_from_settings(settings: CommonSettings) -> ObjectStore:
    """The store the settings name: S3 for `s3://`, a folder otherwise."""
    url = settings.resolved_object_store_url()
    if url.startswith("s3://"):
        from marketsense.common.store.s3 import S3Store

        return S3Store(
            url,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=_secret(settings.s3_access_key_id),
            secret_access_key=_secret(settings.s3_secret_access_key),
            region=settings.s3_region,
        )
    return FileStore(url)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


__all__ = ["FileStore", "ObjectStore", "sha256_hex", "store_from_settings"]
